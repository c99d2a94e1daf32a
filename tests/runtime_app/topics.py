from eventplatform.kafka.topics import declare

RECORDS = declare("test.records", partitions=2)
