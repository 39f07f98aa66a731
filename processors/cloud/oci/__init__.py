"""OCI FOCUS cost reports from Object Storage: cloud.oci_cost_report."""
