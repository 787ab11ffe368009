"""Safe outputs and inputs of `predict` / `export` (issue 19: data loss, unbounded resources, unclear messages)."""

import csv
import io
import os
import signal
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_images
from isomax.deploy._files import OutputLock, OutputLockedError, terminate_as_interrupt
from isomax.deploy import fit_run_threshold, list_inputs, read_images, run_predict


def _quiet(_):
    pass


def _read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def fitted(fresh_run):
    run_dir = fresh_run("isomaxplus")
    fit_run_threshold(run_dir, progress=False, log=_quiet)
    return run_dir


# ---- outputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["checkpoint.pt", "threshold.json", "config.json", "calibration.json", "log.jsonl", "other.json"]
)
def test_predict_and_export_refuse_an_out_in_the_run_directory(fitted, tmp_path, name):
    from isomax.deploy.export import export_onnx

    write_images(tmp_path / "images", n=1)
    before = {p.name: p.read_bytes() for p in fitted.iterdir()}
    with pytest.raises(ValueError, match=f"--out .*{name} is a file of the run directory"):
        run_predict(fitted, [tmp_path / "images"], fitted / name, progress=False, log=_quiet)
    with pytest.raises(ValueError, match="is a file of the run directory"):
        export_onnx(fitted, fitted / name, log=_quiet)
    assert {p.name: p.read_bytes() for p in fitted.iterdir()} == before  # the run is untouched


def test_predict_refuses_an_out_that_is_an_input_or_a_directory(fitted, tmp_path):
    paths = write_images(tmp_path / "images", n=2)
    data = paths[0].read_bytes()
    with pytest.raises(ValueError, match="one of the inputs"):
        run_predict(fitted, [paths[0]], paths[0], progress=False, log=_quiet)
    with pytest.raises(ValueError, match="one of the inputs"):  # listed from a folder
        run_predict(fitted, [tmp_path / "images"], paths[0], progress=False, log=_quiet)
    assert paths[0].read_bytes() == data
    with pytest.raises(IsADirectoryError, match="is a directory"):
        run_predict(fitted, [paths[0]], tmp_path / "images", progress=False, log=_quiet)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        run_predict(fitted, [paths[0]], fitted, progress=False, log=_quiet)


def test_a_second_predict_on_the_same_out_is_refused(fitted, tmp_path):
    write_images(tmp_path / "images", n=1)
    out = tmp_path / "p.csv"
    with OutputLock(out, "predict"):  # another live process writes it
        with pytest.raises(OutputLockedError, match=r"p.csv is in use: process \d+ .*isomax predict"):
            run_predict(fitted, [tmp_path / "images"], out, progress=False, log=_quiet)
    assert not out.exists() and not out.with_name("p.csv.lock").exists()
    run_predict(fitted, [tmp_path / "images"], out, progress=False, log=_quiet)  # free again
    assert out.exists() and not out.with_name("p.csv.lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(fitted, tmp_path):
    import socket

    write_images(tmp_path / "images", n=1)
    out = tmp_path / "p.csv"
    out.with_name("p.csv.lock").write_text(f"{2**22 + 12345} {socket.gethostname()}\n")  # no such pid
    run_predict(fitted, [tmp_path / "images"], out, progress=False, log=_quiet)
    assert out.exists()


def test_a_second_export_on_the_same_out_is_refused_and_temps_are_cleaned(fitted, tmp_path):
    from isomax.deploy import export as export_mod

    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    out = tmp_path / "m.onnx"
    stale = [
        tmp_path / f"m.onnx.{2**22 + 7}.tmp.onnx",
        tmp_path / "m.onnx.tmp.onnx",
        tmp_path / f"m.onnx.{2**22 + 8}.tmp",
    ]
    for p in stale:
        p.write_bytes(b"half a graph")  # left by a SIGKILL / a full disk
    keep = tmp_path / f"m.onnx.{os.getpid()}.partial"  # not a temporary file of ours
    keep.write_text("x")
    with OutputLock(out, "export"):
        with pytest.raises(OutputLockedError, match="isomax export"):
            export_mod.export_onnx(fitted, out, exporter="legacy", log=_quiet)
    export_mod.export_onnx(fitted, out, exporter="legacy", log=_quiet)
    assert out.exists() and keep.exists() and not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", keep.name]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_an_interrupted_export_leaves_no_temporary_file(fitted, tmp_path, monkeypatch, interrupt):
    from isomax.deploy import export as export_mod

    def half(module, example, path, dynamo):
        path.write_bytes(b"half a graph")
        raise interrupt

    monkeypatch.setattr(export_mod, "_export", half)
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    with pytest.raises(type(interrupt) if isinstance(interrupt, Exception) else interrupt):
        export_mod.export_onnx(fitted, tmp_path / "m.onnx", exporter="legacy", log=_quiet)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_becomes_an_interrupt_inside_and_not_after():
    with pytest.raises(KeyboardInterrupt):
        with terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5) if hasattr(signal, "sigtimedwait") else None
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler) or callable(
        signal.getsignal(signal.SIGTERM)
    )


def test_sigterm_during_predict_keeps_the_partial_file_and_the_lock_goes(fitted, tmp_path, monkeypatch):
    from isomax.deploy import Predictor

    write_images(tmp_path / "images", n=5)
    calls = []
    original = Predictor.predict

    def terminated(self, x):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        return original(self, x)

    monkeypatch.setattr(Predictor, "predict", terminated)
    out = tmp_path / "p.csv"
    with pytest.raises(KeyboardInterrupt):
        run_predict(fitted, [tmp_path / "images"], out, batch_size=2, progress=False, log=_quiet)
    assert not out.exists() and not (tmp_path / "p.csv.lock").exists()
    assert len(_read(tmp_path / "p.csv.partial")) == 2  # the first batch; the rest is redone on resume
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_resume_redoes_files_changed_since_and_rows_with_cut_errors(fitted, tmp_path, monkeypatch):
    from isomax.deploy import Predictor

    write_images(tmp_path / "images", n=4)
    (tmp_path / "images" / "z_broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "p.csv"
    original = Predictor.predict
    calls = []

    def killed(self, x):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(Predictor, "predict", killed)
    with pytest.raises(KeyboardInterrupt):
        run_predict(fitted, [tmp_path / "images"], out, batch_size=2, progress=False, log=_quiet)
    partial = _read(tmp_path / "p.csv.partial")
    assert len(partial) == 4
    changed = partial[0]["path"]
    Image.fromarray(np.full((28, 28), 7, dtype=np.uint8), mode="L").save(changed)  # replaced after it was predicted
    os.utime(changed, ns=(1, 1))
    # an error row cut by the kill after its error text began: every field there, the end mark missing
    with open(tmp_path / "p.csv.partial", "a", encoding="utf-8") as fh:
        fh.write(f"{tmp_path / 'images' / 'z_broken.png'},,,,0.1,,cannot deco")
    monkeypatch.setattr(Predictor, "predict", original)
    lines = []
    run_predict(fitted, [tmp_path / "images"], out, batch_size=2, progress=False, log=lines.append)
    assert any("resuming: 3 of 7" in line and "predicted again" in line for line in lines)
    rows = {r["path"]: r for r in _read(out)}
    assert "cannot decode image" in rows[str(tmp_path / "images" / "z_broken.png")]["error"]
    fresh = tmp_path / "fresh.csv"
    run_predict(fitted, [tmp_path / "images"], fresh, batch_size=2, progress=False, log=_quiet)
    got, want = _read(out), _read(fresh)  # the changed file's row is that of its new content
    assert [(r["path"], r["class"], r["error"]) for r in got] == [(r["path"], r["class"], r["error"]) for r in want]
    for r, w in zip(got, want):  # another batch composition: the last float bits may differ
        assert float(r["score"] or 0) == pytest.approx(float(w["score"] or 0), abs=1e-5)
    assert list(_read(out)[0]) == ["path", "class", "probability", "score", "threshold", "accepted", "error"]


def test_resume_with_other_inputs_on_the_same_out(fitted, tmp_path, monkeypatch):
    # issue 19: two predicts with different inputs on one --out ended in a KeyError
    from isomax.deploy import Predictor

    write_images(tmp_path / "a", n=4)
    write_images(tmp_path / "b", n=3, seed=1)
    out = tmp_path / "p.csv"
    original = Predictor.predict

    def killed(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(Predictor, "predict", killed)
    with pytest.raises(KeyboardInterrupt):
        run_predict(fitted, [tmp_path / "a"], out, batch_size=2, progress=False, log=_quiet)
    monkeypatch.setattr(Predictor, "predict", original)
    summary = run_predict(fitted, [tmp_path / "b"], out, batch_size=2, progress=False, log=_quiet)
    assert summary.n_inputs == 5 and all(r["path"].startswith(str(tmp_path / "b")) for r in _read(out))


# ---- inputs ----------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_an_image_is_skipped_not_waited_for(fitted, tmp_path):
    from isomax.data.errors import DatasetError
    from isomax.data.images import read_file

    write_images(tmp_path / "images", n=2)
    os.mkfifo(tmp_path / "images" / "x.png")
    lines = []
    summary = run_predict(fitted, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=lines.append)
    assert any("skipped 1 not a regular file entry" in line for line in lines)
    assert summary.n_inputs == 4  # 2 grey + photo + broken.png; the FIFO is not one
    # named on the command line: an error row, never opened for reading
    run_predict(fitted, [tmp_path / "images" / "x.png"], tmp_path / "q.csv", progress=False, log=_quiet)
    (row,) = _read(tmp_path / "q.csv")
    assert "not a regular file" in row["error"]
    with pytest.raises(DatasetError, match="not a regular file"):
        read_file(tmp_path / "images" / "x.png")  # opened without blocking


def test_hidden_files_are_counted(fitted, tmp_path):
    write_images(tmp_path / "images", n=1)
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8), mode="L").save(tmp_path / "images" / ".hidden.png")
    (tmp_path / "images" / ".cache").mkdir()
    lines = []
    run_predict(fitted, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=lines.append)
    assert any("skipped 2 hidden entries" in line for line in lines)


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_a_non_utf8_file_name_is_an_error_row_not_a_failed_run(fitted, tmp_path):
    write_images(tmp_path / "images", n=2)
    bad = os.path.join(os.fsencode(tmp_path / "images"), b"caf\xe9.png")
    with open(bad, "wb") as fh:
        fh.write((tmp_path / "images" / "grey_0.png").read_bytes())
    summary = run_predict(fitted, [tmp_path / "images"], tmp_path / "p.csv", progress=False, log=_quiet)
    rows = {r["path"]: r for r in _read(tmp_path / "p.csv")}
    name = str(tmp_path / "images" / "caf\\xe9.png")
    assert "not valid UTF-8" in rows[name]["error"] and summary.n_failed == 2  # + broken.png
    assert sum(1 for r in rows.values() if not r["error"]) == 3


def test_list_inputs_reports_missing_and_special_files(tmp_path):
    paths, errors = list_inputs([tmp_path / "nope.png", "/dev/null"])
    assert errors == {
        str(tmp_path / "nope.png"): "no such file or directory",
        "/dev/null": "not a regular file (a FIFO, device or socket); not read",
    }


def _exif_jpeg(array, orientation):
    im = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation, shape", [(1, (3, 16, 40)), (6, (3, 40, 16)), (3, (3, 16, 40)), (8, (3, 40, 16))])
def test_exif_orientation_is_applied(orientation, shape):
    from PIL import ImageOps

    from isomax.data.images import decode_image_bytes

    rng = np.random.default_rng(0)
    a = np.repeat(np.repeat(rng.integers(0, 255, (4, 10, 3), dtype=np.uint8), 4, 0), 4, 1)  # 16x40, blocky
    data = _exif_jpeg(a, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")).transpose(2, 0, 1)
    got = decode_image_bytes("x.jpg", data)  # the torchvision path
    assert got.shape == shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 2  # two JPEG decoders
    big = np.repeat(np.repeat(a, 8, 0), 8, 1)  # 128x320: decoded reduced (PIL path) for a 8x8 model
    data = _exif_jpeg(big, orientation)
    got = decode_image_bytes("x.jpg", data, like=(3, 8, 8))
    assert got.shape[1:] == ((32, 80) if shape[1] == 16 else (80, 32))


def test_large_images_are_decoded_reduced_and_converted_alike(tmp_path):
    from isomax.data.images import convert_like, decode_image_bytes, reduce_factor

    y, x = np.mgrid[0:2000, 0:1600]
    smooth = ((np.sin(x / 150.0) + np.cos(y / 200.0) + 2) * 60).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(smooth, mode="L").save(buf, "PNG")
    assert reduce_factor((1600, 2000), (1, 28, 28)) == 14 and reduce_factor((100, 100), (1, 28, 28)) == 1
    info = {}
    small = decode_image_bytes("x.png", buf.getvalue(), like=(1, 28, 28), info=info)
    assert small.shape == (1, 143, 115) and info["size"] == (2000, 1600)
    full = decode_image_bytes("x.png", buf.getvalue())
    a = convert_like(torch.from_numpy(small.copy())[None], (1, 28, 28))[0]
    b = convert_like(torch.from_numpy(full.copy())[None], (1, 28, 28))[0]
    diff = (a.int() - b.int()).abs()
    assert diff.max() <= 5 and diff.double().mean() < 1.5  # the same picture at the model's size (box vs bilinear)


def test_read_images_converts_one_at_a_time(tmp_path):
    paths = write_images(tmp_path, n=3)
    Image.fromarray(np.zeros((600, 900), dtype=np.uint8), mode="L").save(tmp_path / "big.png")
    images, ok, errors, conv = read_images([str(p) for p in paths] + [str(tmp_path / "big.png")], (1, 28, 28))
    assert images.shape == (5, 1, 28, 28) and ok == [0, 1, 2, 3, 4] and not errors
    assert any("600x900 grey decoded at 120x180" in c for c in conv)


def test_evaluate_owns_its_out(fresh_run, tmp_path, capsys):
    # issue 19: a reused evaluate --out kept old outputs/*.npz, which `report` then drew as runs
    import json

    from isomax.cli import main

    run_dir = fresh_run("isomaxplus")
    ev = tmp_path / "ev"
    (ev / "outputs").mkdir(parents=True)
    (ev / "outputs" / "old-run.npz").write_bytes(b"an earlier evaluation's logits")
    (ev / "outputs" / f"half.npz.{2**22 + 3}.tmp").write_bytes(b"killed while writing")
    (ev / "notes.txt").write_text("the user's")
    assert (
        main(["evaluate", str(run_dir), "--ood", "uniform", "--device", "cpu", "--no-progress", "--out", str(ev)]) == 0
    )
    assert "removed 2 file(s) of an earlier evaluation" in capsys.readouterr().out
    assert sorted(p.name for p in (ev / "outputs").iterdir()) == ["isomaxplus.npz"]
    assert (ev / "notes.txt").exists() and not (ev / "results.json.lock").exists()
    assert {r["run"] for r in json.loads((ev / "results.json").read_text())} == {"isomaxplus"}
    with OutputLock(ev / "results.json", "evaluate"):  # a second evaluation into the same --out
        assert (
            main(["evaluate", str(run_dir), "--ood", "uniform", "--device", "cpu", "--no-progress", "--out", str(ev)])
            == 2
        )
    assert "is in use" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse non-UTF-8 names")
def test_a_non_utf8_file_name_in_an_ood_folder_is_loaded(tmp_path, monkeypatch):
    # issue 19: one such name failed the whole `evaluate` (exit 2, file not named)
    import isomax.data as D

    monkeypatch.setenv("ISOMAX_CACHE", str(tmp_path / "cache"))
    (tmp_path / "imgs").mkdir()
    for i in range(2):
        Image.fromarray(np.full((28, 28), 40 * i, dtype=np.uint8), mode="L").save(tmp_path / "imgs" / f"{i}.png")
    with open(os.path.join(os.fsencode(tmp_path / "imgs"), b"caf\xe9.png"), "wb") as fh:
        fh.write((tmp_path / "imgs" / "1.png").read_bytes())
    assert len(D.load_ood(tmp_path / "imgs")) == 3
