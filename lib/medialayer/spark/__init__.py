"""Spark glue: thin DataFrame -> DataFrame stages that wrap the pure library in Arrow batches."""
