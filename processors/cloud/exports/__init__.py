"""The flow the file-export clouds share (AWS, Azure, OCI): list, fetch, read (Parquet,
CSV), normalize FOCUS rows, write once."""
