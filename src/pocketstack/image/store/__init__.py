"""Image data stores: the contract (:mod:`.base`) and its two implementations."""

from pocketstack.image.store.base import (
    DataNotFound,
    Reader,
    Store,
    Stored,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from pocketstack.image.store.file import FileStore
from pocketstack.image.store.http import LazyClient
from pocketstack.image.store.keystone import ServiceAuth, ServiceCredentials
from pocketstack.image.store.swift import SwiftStore

__all__ = ["DataNotFound", "FileStore", "LazyClient", "Reader", "ServiceAuth",
           "ServiceCredentials", "Store", "StoreError", "StoreFull", "StoreUnavailable",
           "Stored", "SwiftStore"]
