"""Cloud billing processors, one package per cloud, and the export flow they share."""
