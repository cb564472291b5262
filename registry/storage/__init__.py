"""Blob storage, in layers like Distribution's ``registry/storage``:

* ``driver``: the StorageDriver seam and one backend per module (filesystem, memory);
* ``paths``: the whole layout on a driver;
* ``blobs``: the blob store handlers and GC use (open, stat, mount, delete, what GC walks);
* ``uploads``: upload sessions (streamed, hashed, committed by rename).
"""
