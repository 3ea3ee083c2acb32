"""The Kafka source: the event contract, the client, the faust worker and the publishing sink."""
