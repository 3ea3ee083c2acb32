-- A replayed Kafka batch must not store the same poison message twice.
CREATE UNIQUE INDEX dead_letters_position_unique ON dead_letters (source, partition, position)
    WHERE position IS NOT NULL;
