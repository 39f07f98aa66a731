"""The metadata database: its tables (every one, on one MetaData), the run state machine,
the run store and the statements and read-only queries it is made of, engines and
migrations, and the database clock."""
