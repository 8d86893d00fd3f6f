"""Flags -> ExperimentConfig, and every configs/*.flags file parses into a valid config."""

from __future__ import annotations

import glob
import os

import pytest
from absl import flags
from absl.testing import flagsaver

from md2tf import flags as md2tf_flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
md2tf_flags.define_train_flags()
FLAGS = flags.FLAGS


def parse(*args: str):
    """Parses ``args`` into the global FLAGS (inside a flagsaver) and returns the config."""
    FLAGS.unparse_flags()
    FLAGS(["train", *args])
    return md2tf_flags.experiment_config_from_flags(FLAGS)


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # nested --flagfile paths are relative to the cwd
    with flagsaver.flagsaver():
        yield
    FLAGS.unparse_flags()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.flags"))))
def test_every_config_file_parses(path):
    config = parse(f"--flagfile={os.path.relpath(path, REPO)}", "--run_dir=/tmp/x")
    assert config.data.height % 32 == 0 and config.data.width % 32 == 0
    assert config.data.frame_offsets[0] == 0


def test_mono_is_paper_defaults():
    c = parse("--flagfile=configs/mono.flags")
    assert (c.data.height, c.data.width, c.train.batch_size) == (192, 640, 12)
    assert c.train.learning_rate == 1e-4 and c.train.num_epochs == 20
    assert c.train.lr_decay_epochs == (15,) and c.train.lr_decay_factor == pytest.approx(0.1)
    assert c.data.frame_offsets == (0, -1, 1) and not c.data.use_stereo
    assert c.data.split == "eigen_zhou" and c.data.dataset == "kitti"
    assert c.model.encoder_weights.endswith(".pth")
    assert c.loss.min_reprojection and c.loss.automask and c.loss.full_res_multiscale
    assert c.loss.smoothness_weight == pytest.approx(1e-3) and c.use_pose_net


def test_stereo_builds_no_pose_net():
    c = parse("--flagfile=configs/stereo.flags")
    assert c.data.frame_offsets == (0,) and c.data.use_stereo and not c.use_pose_net
    assert c.data.split == "eigen_full"


def test_mono_stereo_has_both():
    c = parse("--flagfile=configs/mono_stereo.flags")
    assert c.data.use_stereo and c.use_pose_net and c.data.num_sources == 3


def test_ablation_baseline_and_rows():
    base = parse("--flagfile=configs/ablation_baseline.flags").loss
    assert (base.min_reprojection, base.automask, base.full_res_multiscale) == (False, False, False)
    rows = {name: parse(f"--flagfile=configs/ablation_{name}.flags").loss
            for name in ("min_reprojection", "automask", "full_res_multiscale", "full")}
    assert (rows["min_reprojection"].min_reprojection, rows["min_reprojection"].automask) == (True, False)
    assert (rows["automask"].automask, rows["automask"].min_reprojection) == (True, False)
    assert rows["full_res_multiscale"].full_res_multiscale and not rows["full_res_multiscale"].automask
    assert rows["full"].min_reprojection and rows["full"].automask and rows["full"].full_res_multiscale


def test_finetune_and_no_pt_recipes():
    hi = parse("--flagfile=configs/mono_1024x320.flags")
    assert (hi.data.height, hi.data.width, hi.train.num_epochs) == (320, 1024, 5)
    assert hi.train.learning_rate == pytest.approx(1e-5) and hi.train.lr_decay_epochs == ()
    assert hi.train.init_checkpoint
    no_pt = parse("--flagfile=configs/mono_no_pt.flags")
    assert no_pt.model.encoder_weights == "none" and no_pt.train.num_epochs == 30


def test_synthetic_uses_cache_dir_and_command_line_overrides_file():
    c = parse("--flagfile=configs/synthetic.flags", "--batch_size=3", "--synthetic_cache_dir=/tmp/w")
    assert c.data.dataset == "synthetic" and c.data.data_dir == "/tmp/w"
    assert c.train.batch_size == 3  # the command line wins over the file
    # Stereo from scratch with a far disparity start (the reference 0.5 never finds the stereo basin).
    assert c.data.frame_offsets == (0,) and c.data.use_stereo and not c.use_pose_net
    assert c.model.init_disparity == 0.02
    world = md2tf_flags.synthetic_world_from_flags(FLAGS)
    assert (world["height"], world["width"]) == (c.data.height, c.data.width)
    assert parse("--flagfile=configs/mono.flags").model.init_disparity is None  # reference init


def test_synthetic_mono_recipe_pretrains_on_another_world():
    pretrain = parse("--flagfile=configs/synthetic_mono_pretrain.flags")
    pretrain_world = md2tf_flags.synthetic_world_from_flags(FLAGS)
    mono = parse("--flagfile=configs/synthetic_mono.flags", "--encoder_init=runs/pretrain")
    mono_world = md2tf_flags.synthetic_world_from_flags(FLAGS)
    # Pure M with the reference disparity init; MS pretraining, so both encoders exist in the source.
    assert mono.data.frame_offsets == (0, -1, 1) and not mono.data.use_stereo
    assert mono.model.init_disparity is None and mono.train.encoder_init == "runs/pretrain"
    assert pretrain.data.use_stereo and pretrain.use_pose_net
    # Other drives: another world seed in another directory (the M run's test drive is never seen).
    assert pretrain_world["seed"] != mono_world["seed"]
    assert pretrain.data.data_dir != mono.data.data_dir
    assert (mono.model.num_layers, mono.model.pose_num_layers) == (
        pretrain.model.num_layers, pretrain.model.pose_num_layers)


def test_bad_height_names_the_flag():
    with pytest.raises(ValueError, match="--height"):
        parse("--height=100")


def test_bad_frame_offsets_name_the_flag():
    with pytest.raises(ValueError, match="--frame_offsets"):
        parse("--frame_offsets=-1,0,1")
    with pytest.raises(ValueError, match="--frame_offsets"):
        parse("--frame_offsets=0,a")


def test_bad_profile_steps():
    with pytest.raises(ValueError, match="--profile_steps"):
        parse("--profile_steps=5,3")
