"""Ingestion: read a daily drop in whatever format and encoding it arrives, validate it, lose nothing."""

from dibao.ingest.drop import Drop, ingest_drop, ingest_file
from dibao.ingest.parse import RowFault
from dibao.ingest.validate import IngestedFile

__all__ = ["Drop", "IngestedFile", "RowFault", "ingest_drop", "ingest_file"]
