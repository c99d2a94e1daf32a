"""Topics owned by contacts (the one place their names are declared)."""

from eventplatform.kafka.topics import declare

# Keyed ``job_id:batch_no`` so one import spreads over every partition and importer.
IMPORT_JOBS = declare("contacts.import-jobs", partitions=6)
