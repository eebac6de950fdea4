"""Bucket providers behind one protocol (`base.BlobStore`): the filesystem and S3."""
