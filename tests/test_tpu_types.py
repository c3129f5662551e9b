"""The one table of Cloud TPU slices (asl_motiongpt/parallel/tpu_types.py): the names users type become
libtpu's topology names for the dry run, gcloud's accelerator types and the software version for the
launcher; unknown names are refused with the list. It runs as a script with any python3."""
import os
import subprocess
import sys

import pytest

from asl_motiongpt.parallel import tpu_types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "asl_motiongpt", "parallel", "tpu_types.py")


@pytest.mark.parametrize("name, libtpu, accelerator, devices, software", [
    ("v4-8", "v4:2x2x1", "v4-8", 4, "tpu-ubuntu2204-base"),        # v4 counts TensorCores: 4 megacore chips
    ("v4-32", "v4:2x2x4", "v4-32", 16, "tpu-ubuntu2204-base"),
    ("v5e-16", "v5e:4x4", "v5litepod-16", 16, "v2-alpha-tpuv5-lite"),  # what people type ...
    ("v5litepod-8", "v5e:2x4", "v5litepod-8", 8, "v2-alpha-tpuv5-lite"),  # ... and what gcloud takes
    ("v5p-64", "v5:2x4x4", "v5p-64", 32, "v2-alpha-tpuv5"),
    ("v5p-128", "v5:4x4x4", "v5p-128", 64, "v2-alpha-tpuv5"),
    ("v6e-8", "v6e:2x4", "v6e-8", 8, "v2-alpha-tpuv6e"),
    ("v6e-256", "v6e:16x16", "v6e-256", 256, "v2-alpha-tpuv6e"),
    ("V5E-32", "v5e:4x8", "v5litepod-32", 32, "v2-alpha-tpuv5-lite"),
])
def test_cloud_names_map_to_libtpu_gcloud_and_the_software_version(name, libtpu, accelerator, devices, software):
  tpu = tpu_types.parse(name)
  assert (tpu.libtpu_name, tpu.accelerator_type, tpu.devices, tpu.generation.runtime_version) == (
      libtpu, accelerator, devices, software)


def test_libtpu_names_are_taken_as_they_are_and_megacore_follows_the_generation():
  v5p = tpu_types.parse("v5:2x4x4")
  assert (v5p.generation.name, v5p.chips, v5p.accelerator_type, v5p.chip_config_name) == ("v5p", 32, "v5p-64", "megacore")
  v5e = tpu_types.parse("v5e:2x4")
  assert (v5e.generation.name, v5e.chips, v5e.chip_config_name) == ("v5e", 8, "default")
  assert tpu_types.parse("v4:2x2x1").chip_config_name == "megacore"  # a v4-8 is 4 devices, not 8


def test_several_slices_multiply_the_devices_not_the_accelerator_type():
  tpu = tpu_types.parse("v5e-16x2")
  assert (tpu.slices, tpu.devices, tpu.accelerator_type, tpu.libtpu_name) == (2, 32, "v5litepod-16", "v5e:4x4")


@pytest.mark.parametrize("name, says", [("v7-8", "is not known"), ("v4-6", "v4 slices come in TensorCore counts"),
                                        ("v5p-12", "v5p-8, v5p-16"), ("tpu7:2x2", "libtpu prefix"),
                                        ("v5e-12", "v5litepod-16")])
def test_an_unknown_or_impossible_slice_is_refused_with_the_names_that_exist(name, says):
  with pytest.raises(tpu_types.UnknownTpuType, match=says) as refusal:
    tpu_types.parse(name)
  assert name in str(refusal.value)


def test_the_script_answers_the_launcher_with_any_python_and_fails_clearly():
  def run(*args):
    # -S -I: no site packages, no project on the path; only the standard library is available
    return subprocess.run([sys.executable, "-S", "-I", SCRIPT, *args], capture_output=True, text=True, timeout=60)
  assert run("runtime-version", "v6e-8").stdout.strip() == "v2-alpha-tpuv6e"
  assert run("accelerator-type", "v5e-16").stdout.strip() == "v5litepod-16"
  refused = run("runtime-version", "v9-8")
  assert refused.returncode == 1 and "v5litepod-16" in refused.stderr and not refused.stdout
  assert run("runtime-version").returncode == 2


def test_the_docs_show_the_table_the_code_uses():
  with open(os.path.join(REPO, "docs", "scale-out.md"), encoding="utf-8") as page:
    assert tpu_types.markdown_table() in page.read()
