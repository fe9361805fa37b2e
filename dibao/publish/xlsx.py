"""Workbooks as dibao writes them (work lists, the coverage download): xlsxwriter with fixed options, zipped at
a quicker deflate level.

xlsxwriter zips a workbook at zlib's default level, 6, and at province scale that was a third of writing the work
lists (12.7 s of 39 s in one process at 2 million households). Level 3 deflates the same XML 2.3× as fast into
files about a fifth larger (the largest county's workbook: 12.4 → 14.9 MB). xlsxwriter has no option for it, so
the ``ZipFile`` its workbook module uses is replaced, once, by one that deflates at ``ZIP_LEVEL``: every workbook
of the process is then zipped the same way, whichever part of dibao wrote it, and the same rows still give the
same bytes (``tests/test_xlsx.py`` checks the level on a written file, so an xlsxwriter that zips differently
fails there rather than silently)."""

from __future__ import annotations

import io
import zipfile
from typing import IO, TYPE_CHECKING, Any, Literal

import xlsxwriter
import xlsxwriter.workbook
from xlsxwriter.workbook import Workbook

if TYPE_CHECKING:
    from _typeshed import SizedBuffer

ZIP_LEVEL = 3  # zlib level of every workbook's parts

_OPTIONS = {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
            "strings_to_urls": False}


class _QuickZipFile(zipfile.ZipFile):
    """xlsxwriter's ``ZipFile(path, "w", compression=ZIP_DEFLATED, …)``, deflating at ``ZIP_LEVEL``: given to the
    constructor (parts copied from files) and to ``writestr`` (parts held in memory, which xlsxwriter passes with
    a ``ZipInfo`` of its own, whose level would otherwise be zlib's default)."""

    def __init__(self, file: str | IO[bytes], mode: Literal["w"], compression: int = zipfile.ZIP_DEFLATED,
                 allowZip64: bool = True) -> None:
        super().__init__(file, mode, compression=compression, allowZip64=allowZip64, compresslevel=ZIP_LEVEL)

    def writestr(self, zinfo_or_arcname: str | zipfile.ZipInfo, data: SizedBuffer | str,
                 compress_type: int | None = None, compresslevel: int | None = None) -> None:
        super().writestr(zinfo_or_arcname, data, compress_type,
                         ZIP_LEVEL if compresslevel is None else compresslevel)


if xlsxwriter.workbook.ZipFile not in (zipfile.ZipFile, _QuickZipFile):  # pragma: no cover - a newer xlsxwriter
    raise ImportError("xlsxwriter.workbook no longer zips with zipfile.ZipFile: check dibao/publish/xlsx.py")
xlsxwriter.workbook.ZipFile = _QuickZipFile


def new_workbook(target: str | io.BytesIO, properties: dict[str, Any]) -> Workbook:
    """A workbook written to ``target`` (a path or a buffer): text stays text (no number, formula or link is
    guessed from it), and the document properties are ``properties`` (title, author…), fixed by the caller so
    that the same rows give the same bytes."""
    workbook = xlsxwriter.Workbook(target, _OPTIONS)
    workbook.set_properties(properties)
    return workbook
