"""The restricted torch-file reader: both on-disk formats, refusal of code-executing pickles, clear errors."""
import os
import pickle
import zipfile

import numpy as np
import pytest

from ganlatent_jax.port import torch_pickle
from conftest import fixture_path


@pytest.mark.parametrize("zip_file,legacy_file", [
    ("stylegan2/stylegan2_rosinality_s32.pt", "legacy/stylegan2_rosinality_s32_legacy.pt"),
    ("biggan/biggan_tiny/pytorch_model.bin", "legacy/biggan_tiny_pytorch_model_legacy.bin"),
])
def test_zip_and_legacy_formats_give_identical_tensors(zip_file, legacy_file):
  new = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(fixture_path(zip_file)))
  old = torch_pickle.flatten_state_dict(torch_pickle.load_torch_file(fixture_path(legacy_file)))
  assert new.keys() == old.keys() and len(new) > 80
  for key in new:
    assert new[key].dtype == old[key].dtype, key
    np.testing.assert_array_equal(new[key], old[key], err_msg=key)


def test_values_match_what_upstream_computed():
  checkpoint = torch_pickle.load_torch_file(fixture_path("stylegan2/stylegan2_rosinality_s32.pt"))
  io_arrays = np.load(fixture_path("stylegan2/stylegan2_rosinality_s32_io.npz"))
  assert set(checkpoint) == {"g_ema", "latent_avg"}
  np.testing.assert_array_equal(checkpoint["latent_avg"], io_arrays["mean_latent"][0])
  # Registered noise buffers are stored in the state dict and in the npz.
  np.testing.assert_array_equal(checkpoint["g_ema"]["noises.noise_3"], io_arrays["noise_3"])


def test_integer_tensors_keep_their_dtype():
  state = torch_pickle.load_torch_file(fixture_path("torchvision/tv_resnet18_tiny.pth"))
  assert state["bn1.num_batches_tracked"].dtype == np.int64
  assert int(state["bn1.num_batches_tracked"]) == 12345


class _RunsCode:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def _malicious_zip(path, marker):
  payload = pickle.dumps({"weight": _RunsCode(marker)}, protocol=2)
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", payload)
    archive.writestr("archive/version", "3\n")


def _malicious_legacy(path, marker):
  with open(path, "wb") as f:
    for header in (torch_pickle.LEGACY_MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True}):
      pickle.dump(header, f, protocol=2)
    pickle.dump({"weight": _RunsCode(marker)}, f, protocol=2)


@pytest.mark.parametrize("writer", [_malicious_zip, _malicious_legacy], ids=["zip", "legacy"])
def test_code_executing_pickle_is_refused_and_nothing_runs(tmp_path, writer):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pt"
  writer(path, marker)
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match=r"posix\.system|os\.system"):
    torch_pickle.load_torch_file(path)
  assert not marker.exists()


def test_truncated_file_names_the_file(tmp_path):
  data = fixture_path("legacy/stylegan2_rosinality_s32_legacy.pt").read_bytes()
  path = tmp_path / "cut.pt"
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(torch_pickle.CheckpointError, match="cut.pt.*truncated"):
    torch_pickle.load_torch_file(path)


def test_zip_with_missing_storage_names_the_record(tmp_path):
  source = zipfile.ZipFile(fixture_path("stylegan2/stylegan2_rosinality_s32.pt"))
  path = tmp_path / "partial.pt"
  with zipfile.ZipFile(path, "w") as out:
    for name in source.namelist():
      if not name.endswith("/data/3"):
        out.writestr(name, source.read(name))
  with pytest.raises(torch_pickle.CheckpointError, match=r"partial.pt: storage record '.*data/3' is missing"):
    torch_pickle.load_torch_file(path)


def test_not_a_checkpoint(tmp_path):
  path = tmp_path / "notes.pt"
  path.write_text("hello")
  with pytest.raises(torch_pickle.CheckpointError, match="notes.pt"):
    torch_pickle.load_torch_file(path)
  with pytest.raises(FileNotFoundError, match="nowhere.pt"):
    torch_pickle.load_torch_file(tmp_path / "nowhere.pt")


def test_argparse_namespace_becomes_a_dict(tmp_path):
  import argparse
  path = tmp_path / "train_ckpt.pt"
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", pickle.dumps({"args": argparse.Namespace(size=256, lr=0.002)}, protocol=2))
  loaded = torch_pickle.load_torch_file(path)
  assert loaded["args"] == {"size": 256, "lr": 0.002}
