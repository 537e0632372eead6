"""The one upload checker every path uses (releases, exchange submissions, the feedback service's
submissions and checks, released feedback): names, counts, sizes, notebooks."""
from __future__ import annotations

import json

import nbformat
import pytest

from learnhub.uploads import UploadError, check_name, check_upload


def notebook() -> bytes:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])).encode()


@pytest.mark.parametrize("name", ["../x.ipynb", "/etc/passwd", "a/../../b", "a\\b", "", "a//b", "./a", "x\x00y",
                                  "a:b", 'quo"te.ipynb', "x" * 256, "tab\there"])
def test_bad_names_are_refused_with_400_naming_the_file(name):
    with pytest.raises(UploadError) as caught:
        check_name(name)
    assert caught.value.status == 400 and caught.value.details == {"file": name}


def test_plain_relative_names_pass_and_are_normalised():
    assert check_name("hw/data/input.csv") == "hw/data/input.csv"
    assert check_name("ünïcödé notebook.ipynb") == "ünïcödé notebook.ipynb"


def test_an_upload_is_accepted_whole_or_not_at_all():
    accepted = check_upload({"hw.ipynb": notebook(), "data/in.csv": b"1,2"}, 10_000)
    assert sorted(accepted.files) == ["data/in.csv", "hw.ipynb"] and accepted.notebooks() == ["hw.ipynb"]
    with pytest.raises(UploadError) as caught:  # the bad notebook sinks the good one
        check_upload({"good.ipynb": notebook(), "broken.ipynb": b"{not json"}, 10_000)
    assert caught.value.status == 422 and caught.value.details["file"] == "broken.ipynb"


@pytest.mark.parametrize("files,max_bytes,status,fragment", [
    ([], 100, 400, "no files"),
    ([("a.txt", b"x")] * 501, 10_000, 413, "too many files"),
    ([("big.bin", b"0" * 101)], 100, 413, "limit is 100"),
    ([("a.ipynb", notebook()), ("a.ipynb", notebook())], 10_000, 400, "twice"),
    ([("hw.ipynb", json.dumps({"cells": "nope"}).encode())], 10_000, 422, "hw.ipynb is not a valid notebook"),
    ([("hw.ipynb", b"\xff\xfe")], 10_000, 422, "not UTF-8"),
])
def test_what_is_refused_and_why(files, max_bytes, status, fragment):
    with pytest.raises(UploadError) as caught:
        check_upload(files, max_bytes)
    assert caught.value.status == status and fragment in caught.value.message


def test_a_submission_needs_a_notebook():
    assert check_upload([("notes.txt", b"hi")], 100).files == {"notes.txt": b"hi"}
    with pytest.raises(UploadError) as caught:
        check_upload([("notes.txt", b"hi")], 100, require_notebook=True)
    assert caught.value.status == 422 and ".ipynb" in caught.value.message
