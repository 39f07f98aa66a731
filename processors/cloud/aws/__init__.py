"""AWS Data Exports (FOCUS 1.2 with AWS columns) from S3: cloud.aws_data_export."""
