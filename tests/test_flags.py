"""Flags generated from the config dataclasses: every field reachable, config.json round trips,
every configs/*.flags file parses, aliases and errors name the flag."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from md2tf import config as cfg
from md2tf import flags as md2tf_flags
from md2tf.data import datasets
from md2tf.data.synthetic.__main__ import GenerateConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = {  # python -m <module> -> its config class
    "md2tf.train": cfg.ExperimentConfig, "md2tf.evaluate": cfg.EvalConfig, "md2tf.export": cfg.ExportConfig,
    "md2tf.predict": cfg.PredictConfig, "md2tf.export_gt": cfg.ExportGtConfig,
    "md2tf.convert": cfg.ConvertConfig, "md2tf.convert.imagenet": cfg.ImagenetConvertConfig,
    "md2tf.data.synthetic": GenerateConfig,
}
COMMANDS = tuple(ENTRY_POINTS.values())


def parse(*args: str, config_cls=cfg.ExperimentConfig):
    """Parses ``args`` into fresh flag values of ``config_cls`` and returns the config."""
    values = flags.FlagValues()
    md2tf_flags.define_flags(config_cls, values)
    values(["cmd", *args])
    return md2tf_flags.config_from_flags(config_cls, values)


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # nested --flagfile paths are relative to the cwd


def _leaves(config, path: tuple[str, ...] = ()) -> dict:
    """``{flag name: value}`` over all nested config dataclasses."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_leaves(value, (*path, f.name)))
        else:
            out[cfg.flag_name(path, f.name)] = value
    return out


def _other_value(f: dataclasses.Field, kind, value):
    """A valid value different from ``value`` for the field, as (flag text, expected value)."""
    choices = f.metadata.get("choices")
    base, _ = md2tf_flags._base_type(kind)
    if choices:
        new = next(c for c in choices if c != value)
        return str(new), new
    if base is bool:
        return str(not value).lower(), not value
    if base is int:
        return str(value + 32), value + 32  # multiples of 32 stay valid for sizes
    if base is float:
        new = 0.25 if value != 0.25 else 0.5
        return str(new), new
    if base is str:
        return "x_y", "x_y"
    return None


@pytest.mark.parametrize("config_cls", COMMANDS, ids=lambda c: c.__name__)
def test_every_field_is_a_flag_and_round_trips_through_json(config_cls):
    """Each field is set from its flag (one at a time) and survives to_dict -> JSON -> from_dict."""
    required = {cfg.EvalConfig: ["--models=a"], cfg.ExportConfig: ["--checkpoint=c", "--out_dir=o"],
                cfg.PredictConfig: ["--model=m", "--input=i", "--out_dir=o"],
                cfg.ExportGtConfig: ["--data_dir=d"], cfg.ConvertConfig: ["--model_dir=m", "--out_dir=o"],
                cfg.ImagenetConvertConfig: ["--pth=p", "--out_dir=o"], GenerateConfig: ["--out_dir=o"]
                }.get(config_cls, [])
    base = parse(*required, config_cls=config_cls)
    hints = {leaf.flag: (leaf.field, leaf.kind) for leaf in md2tf_flags._leaf_fields(config_cls)}
    checked = 0
    for name, value in _leaves(base).items():
        f, kind = hints[name]
        if name in ("frame_offsets", "scales", "lr_decay_epochs", "profile_steps", "formats", "models",
                    "names", "init_disparity", "pose_num_layers", "num_layers", "decoder_channels"):
            continue  # constrained values, parsed in the dedicated tests below
        if (config_cls, name) in ((cfg.ExperimentConfig, "dataset"),):
            continue  # changing the dataset changes which data_dir is valid: tested below
        flag_text, expected = _other_value(f, kind, value)
        try:
            changed = parse(*required, f"--{name}={flag_text}", config_cls=config_cls)
        except ValueError:
            continue  # e.g. 0.25 is not a valid value for every float: the check itself is tested
        assert _leaves(changed)[name] == expected, name
        checked += 1
        if hasattr(config_cls, "from_dict"):
            restored = config_cls.from_dict(json.loads(json.dumps(changed.to_dict())))
            assert restored == changed, name
    assert checked >= len(_leaves(base)) // 2  # most fields were exercised, not skipped


def test_constrained_fields_parse():
    c = parse("--frame_offsets=0,1", "--scales=0,1", "--lr_decay_epochs=3,5", "--profile_steps=2,4",
              "--init_disparity=0.02", "--num_layers=34", "--pose_num_layers=50")
    assert c.data.frame_offsets == (0, 1) and c.model.scales == (0, 1)
    assert c.train.lr_decay_epochs == (3, 5) and c.train.profile_steps == (2, 4)
    assert c.model.init_disparity == 0.02 and (c.model.num_layers, c.model.pose_num_layers) == (34, 50)
    e = parse("--models=a,b", "--names=x,y", config_cls=cfg.EvalConfig)
    assert e.models == ("a", "b") and e.names == ("x", "y")
    x = parse("--checkpoint=c", "--out=o", "--formats=tflite_fp32,tflite_int8", config_cls=cfg.ExportConfig)
    assert x.formats == ("tflite_fp32", "tflite_int8") and x.out_dir == "o"


@pytest.mark.parametrize("config_cls", COMMANDS, ids=lambda c: c.__name__)
def test_no_two_fields_share_a_flag(config_cls):
    names = md2tf_flags.flag_names(config_cls)
    assert len(names) == len(set(names))


def test_paper_aliases_set_the_same_field():
    c = parse("--disparity_smoothness=0.01", "--nossim", "--synthetic_cache_dir=/tmp/w")
    assert c.loss.smoothness_weight == 0.01 and not c.loss.use_ssim and c.data.data_dir == "/tmp/w"
    assert parse("--eval_batch_size=3", "--models=a", config_cls=cfg.EvalConfig).batch_size == 3
    x = parse("--checkpoint=c", "--out=o", "--export_height=64", config_cls=cfg.ExportConfig)
    assert x.height == 64


def test_config_json_replays_a_synthetic_run():
    c = parse("--flagfile=configs/synthetic.flags", "--synthetic_drives=2", "--synthetic_frames=30")
    again = cfg.ExperimentConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c and (again.data.synthetic.drives, again.data.synthetic.frames) == (2, 30)


def test_config_json_with_an_unknown_key_is_refused_naming_it():
    d = cfg.ExperimentConfig().to_dict()
    assert cfg.ExperimentConfig.from_dict(d) == cfg.ExperimentConfig()
    d["data"]["seed"] = 3  # a key this version does not have: no silent migration
    with pytest.raises(ValueError, match=r"unknown DataConfig keys in config: \['seed'\]"):
        cfg.ExperimentConfig.from_dict(d)


def test_non_finite_floats_are_rejected():
    for bad in ("inf", "nan"):
        with pytest.raises(ValueError, match="--learning_rate must be a finite number"):
            parse(f"--learning_rate={bad}")
    with pytest.raises(ValueError, match="--smoothness_weight / --disparity_smoothness must be a finite number"):
        parse("--disparity_smoothness=inf")


@pytest.mark.parametrize("module", sorted(ENTRY_POINTS))
def test_help_lists_the_commands_own_flags_and_exits_0(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in md2tf_flags.flag_names(ENTRY_POINTS[module]):
        assert f"--{name}" in out.stdout, name
    if module != "md2tf.train":
        assert "--learning_rate" not in out.stdout  # only the command's own flags


def test_entry_points_load_without_tensorflow():
    """Each command module (and its package) loads before TensorFlow, so `run_command` can set TF's
    log level and kernels (`start_tensorflow`) before TF starts."""
    # `python -m <package>` runs <package>.__main__
    runpy_names = [m + ".__main__" if m in ("md2tf.convert", "md2tf.data.synthetic") else m
                   for m in ENTRY_POINTS]
    code = ("import importlib, sys\n"
            "sys.modules['tensorflow'] = sys.modules['keras'] = None  # any import of them raises\n"
            f"for name in {runpy_names!r}:\n"
            "    importlib.import_module(name)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_bad_setting_is_one_line_and_exit_2():
    out = subprocess.run([sys.executable, "-m", "md2tf.train", "--run_dir=/tmp/x", "--height=100"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "error: --height must be a positive multiple of 32, got 100"
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.flags"))))
def test_every_config_file_parses(path):
    config = parse(f"--flagfile={os.path.relpath(path, REPO)}", "--run_dir=/tmp/x")
    assert config.data.height % 32 == 0 and config.data.width % 32 == 0
    assert config.data.frame_offsets[0] == 0


def test_phone_flags_add_the_phone_network_to_a_recipe():
    recipe = parse("--flagfile=configs/synthetic.flags")
    phone = parse("--flagfile=configs/synthetic.flags", "--flagfile=configs/phone.flags")
    assert phone.model.encoder == "mobilenet_v3_small_minimalistic" and phone.model.pose_encoder == "resnet"
    assert phone.model.decoder_channels == (8, 16, 32, 64, 128) and phone.train.learning_rate == 1e-3
    assert phone.data == recipe.data and phone.loss == recipe.loss  # the recipe's data and objective


def test_phone_mono_flags_are_the_phone_network_at_the_monocular_rate():
    recipe = parse("--flagfile=configs/synthetic_mono.flags")
    pretrain = parse("--flagfile=configs/synthetic_mono_pretrain.flags", "--flagfile=configs/phone.flags")
    mono = parse("--flagfile=configs/synthetic_mono.flags", "--flagfile=configs/phone_mono.flags")
    architecture = lambda m: (m.encoder, m.pose_encoder, m.decoder_channels, m.num_layers)  # noqa: E731
    assert architecture(mono.model) == architecture(pretrain.model)  # M starts from the pretraining's networks
    assert mono.train.learning_rate == 3e-4 and pretrain.train.learning_rate == 1e-3
    assert mono.data == recipe.data and mono.loss == recipe.loss


def test_mono_is_paper_defaults():
    c = parse("--flagfile=configs/mono.flags")
    assert (c.data.height, c.data.width, c.train.batch_size) == (192, 640, 12)
    assert c.train.learning_rate == 1e-4 and c.train.num_epochs == 20
    assert c.train.lr_decay_epochs == (15,) and c.train.lr_decay_factor == pytest.approx(0.1)
    assert c.data.frame_offsets == (0, -1, 1) and not c.data.use_stereo
    assert c.data.dataset == "kitti" and not c.data.split  # kitti's own split: Zhou et al.'s
    assert datasets.get_dataset(c.data.dataset).split_name(c.data) == "eigen_zhou"
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
    assert (c.data.synthetic.height, c.data.synthetic.width) == (0, 0)  # 0 = the network size
    assert parse("--dataset=synthetic").data.data_dir == cfg.SYNTHETIC_DATA_DIR
    smoke = parse("--flagfile=configs/smoke.flags", "--synthetic_height=40")
    assert (smoke.data.synthetic.drives, smoke.data.synthetic.frames, smoke.data.synthetic.height) == (2, 12, 40)
    assert parse("--flagfile=configs/mono.flags").model.init_disparity is None  # reference init


def test_synthetic_mono_recipe_pretrains_on_another_world():
    pretrain = parse("--flagfile=configs/synthetic_mono_pretrain.flags")
    mono = parse("--flagfile=configs/synthetic_mono.flags", "--init_checkpoint=runs/pretrain")
    # Pure M with the reference disparity init; MS pretraining, so both networks exist in the source.
    assert mono.data.frame_offsets == (0, -1, 1) and not mono.data.use_stereo
    assert mono.model.init_disparity is None and mono.train.init_checkpoint == "runs/pretrain"
    assert pretrain.data.use_stereo and pretrain.use_pose_net
    # Other drives: another world seed in another directory (the M run's test drive is never seen).
    assert pretrain.data.synthetic.seed != mono.data.synthetic.seed
    assert pretrain.data.data_dir != mono.data.data_dir
    assert (mono.model.num_layers, mono.model.pose_num_layers) == (
        pretrain.model.num_layers, pretrain.model.pose_num_layers)
    with pytest.raises(ValueError, match="--init_checkpoint and --encoder_init are exclusive"):
        parse("--flagfile=configs/synthetic_mono.flags", "--init_checkpoint=a", "--encoder_init=b")
    # The recipe: 8 drives whose speed varies, 12 x 98 steps, the LR drop before the last 196.
    assert (mono.data.synthetic.drives, mono.data.synthetic.speed_variation) == (8, 0.2)
    assert (mono.train.num_epochs, mono.train.steps_per_epoch, mono.train.lr_decay_epochs) == (12, 98, (10,))
    # The shorter recipe is the same M run on the stereo config's world, 6 epochs: its measured
    # results (docs/mono.md) hold as long as these do.
    short = parse("--flagfile=configs/synthetic_mono_4drives.flags")
    stereo = parse("--flagfile=configs/synthetic.flags")
    assert short.data.data_dir == stereo.data.data_dir != mono.data.data_dir
    assert (short.data.synthetic.drives, short.data.synthetic.speed_variation, short.data.synthetic.frames) == (4, 0, 100)
    assert (short.data.synthetic.height, short.data.synthetic.width, short.data.height, short.data.width) == (
        96, 320, 64, 224)
    assert short.data.frame_offsets == (0, -1, 1) and not short.data.use_stereo
    assert (short.train.batch_size, short.train.learning_rate, short.train.num_epochs,
            short.train.steps_per_epoch, short.train.lr_decay_epochs) == (4, 1e-4, 6, 0, (5,))
    assert short.model == mono.model and short.model.init_disparity is None
    # The recipe's objective, auto-masked from the first step: its warm-up would last the whole 588 steps.
    assert short.loss == dataclasses.replace(mono.loss, automask_warmup_steps=0)
    assert mono.loss.automask_warmup_steps == 588


def test_synthetic_configs_that_share_a_world_directory_describe_the_same_world():
    # A directory holds one rendered world; a config with other parameters is refused there.
    from md2tf.data.datasets.synthetic import rendered_world

    def is_addon(path: str) -> bool:  # added after a recipe (configs/phone.flags): it describes no world
        with open(path, encoding="utf-8") as f:
            flags = [line.strip() for line in f if line.startswith("--")]
        included = [line.split("=", 1)[1] for line in flags if line.startswith("--flagfile=")]
        return not any(line.startswith("--dataset") for line in flags) and all(map(is_addon, included))

    worlds: dict[str, list[tuple[str, cfg.WorldConfig]]] = {}
    for path in sorted(glob.glob("configs/*.flags")):
        if is_addon(path):
            continue
        data = parse(f"--flagfile={path}").data
        if data.dataset == "synthetic":
            worlds.setdefault(data.data_dir, []).append((path, rendered_world(data)))
    assert len(worlds) >= 4  # S / short M, the M recipe's, the pretraining's, the smoke world
    for data_dir, configs in worlds.items():
        for path, parameters in configs[1:]:
            assert parameters == configs[0][1], f"{path} and {configs[0][0]} share {data_dir}"


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


# --- resumable settings ---------------------------------------------------------------------------

#: Settings a resumed run must keep: the networks, the data geometry and order, the objective.
NOT_RESUMABLE = ("height", "width", "frame_offsets", "use_stereo", "dataset", "split", "image_ext",
                 "intrinsics", "synthetic_height", "synthetic_drives", "synthetic_seed",
                 "video_frame_stride", "video_static_threshold", "encoder", "num_layers", "pose_encoder",
                 "pose_num_layers", "scales",
                 "min_depth", "max_depth", "ssim_weight", "automask", "batch_size",
                 "steps_per_epoch", "seed", "mixed_precision", "pose_source")
#: Settings a resumed run may change: how long and fast it trains, what it logs and saves, paths.
RESUMABLE = ("learning_rate", "num_epochs", "lr_decay_epochs", "max_steps", "log_every",
             "image_log_every", "save_every_steps", "keep_checkpoints", "data_dir",
             "skip_corrupt_images", "run_dir", "progress_bar", "video_cache_dir")


def test_resumable_is_declared_on_the_field_and_defaults_to_false():
    declared = {leaf.flag: leaf.field.metadata["resumable"]
                for leaf in md2tf_flags._leaf_fields(cfg.ExperimentConfig)}
    assert not any(declared[name] for name in NOT_RESUMABLE)
    assert all(declared[name] for name in RESUMABLE)
    assert cfg.setting(1).metadata["resumable"] is False


def test_changed_settings_flattens_nested_configs_in_order():
    a = cfg.ExperimentConfig()
    b = cfg.ExperimentConfig(data=cfg.DataConfig(height=96, frame_offsets=(0, 1)),
                             train=cfg.TrainConfig(learning_rate=5e-5))
    changes = cfg.changed_settings(a, b)
    assert [(c.name, c.recorded, c.now, c.resumable) for c in changes] == [
        ("height", 192, 96, False), ("frame_offsets", (0, -1, 1), (0, 1), False),
        ("learning_rate", 1e-4, 5e-5, True)]
    assert cfg.changed_settings(a, cfg.ExperimentConfig()) == []


def test_changed_settings_name_nested_settings_by_their_flag():
    a = cfg.ExperimentConfig()
    b = cfg.ExperimentConfig(data=cfg.DataConfig(synthetic=cfg.WorldConfig(drives=6),
                                                 video=cfg.VideoConfig(cache_dir="/frames")))
    assert [(c.name, c.recorded, c.now, c.resumable) for c in cfg.changed_settings(a, b)] == [
        ("synthetic_drives", 4, 6, False), ("video_cache_dir", "", "/frames", True)]
    assert set(md2tf_flags.flag_names(cfg.ExperimentConfig)) >= {"synthetic_drives", "video_cache_dir"}


# --- nested configs: one prefix rule ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Deepest(cfg.ConfigBase):
    x: int = cfg.setting(0, "A setting three configs down.")


@dataclasses.dataclass(frozen=True)
class _Inner(cfg.ConfigBase):
    size: int = cfg.setting(1, "A size.", aliases=("n",), unprefixed_aliases=("old_size",))
    lidar: bool = cfg.setting(True, "A boolean.")
    deepest: _Deepest = dataclasses.field(default_factory=_Deepest)

    def validate(self) -> None:
        if self.size < 1:
            raise cfg.ConfigError(f"--size must be >= 1 (unlike --nolidar), got {self.size}")


@dataclasses.dataclass(frozen=True)
class _Middle(cfg.ConfigBase):
    size: int = cfg.setting(2, "The middle config's own size: a flag of its name.")
    inner: _Inner = dataclasses.field(default_factory=_Inner)


@dataclasses.dataclass(frozen=True)
class _Command(cfg.ConfigBase):
    top: int = cfg.setting(3, "The command's own setting.")
    middle: _Middle = dataclasses.field(default_factory=_Middle)


def test_a_config_nested_below_the_sub_configs_prefixes_its_flags_and_aliases():
    assert md2tf_flags.flag_names(_Command) == ["top", "size", "inner_size", "inner_n", "old_size",
                                                "inner_lidar", "inner_deepest_x"]
    assert cfg.flag_name(("data", "synthetic"), "drives") == "synthetic_drives"
    assert cfg.flag_name(("world",), "drives") == "drives" and cfg.flag_name((), "out_dir") == "out_dir"
    c = parse("--size=5", "--inner_n=6", "--noinner_lidar", "--inner_deepest_x=7", config_cls=_Command)
    assert c == _Command(middle=_Middle(size=5, inner=_Inner(size=6, lidar=False, deepest=_Deepest(7))))
    assert parse("--inner_size=8", config_cls=_Command).middle.inner.size == 8
    assert parse("--old_size=9", config_cls=_Command).middle.inner.size == 9
    # A nested config's check names its fields as the command spells their flags.
    with pytest.raises(cfg.ConfigError, match=r"^--inner_size must be >= 1 \(unlike --noinner_lidar\), got 0$"):
        parse("--inner_n=0", config_cls=_Command)
    values = flags.FlagValues()
    md2tf_flags.define_flags(_Command, values)
    text = md2tf_flags.help_text(_Command, "doc", values)
    assert "middle.inner flags:\n  --inner_size, --inner_n, --old_size\n" in text
    assert "middle.inner.deepest flags:\n  --inner_deepest_x\n" in text


def test_the_world_is_one_config_with_one_flag_rule_per_command():
    train, generate = md2tf_flags.flag_names(cfg.ExperimentConfig), md2tf_flags.flag_names(GenerateConfig)
    for f in dataclasses.fields(cfg.WorldConfig):  # every world parameter, in both commands
        assert f"synthetic_{f.name}" in train and f.name in generate, f.name
    assert "synthetic_cache_dir" in train  # an alias of --data_dir, as before
    assert parse("--synthetic_cache_dir=/tmp/w").data.data_dir == "/tmp/w"


def test_synthetic_drives_on_the_command_line_reaches_the_world():
    seen = []

    def main(config, flag_values):
        seen.append(config)

    assert md2tf_flags.call_command(main, cfg.ExperimentConfig, ["--synthetic_drives=6",
                                                                 "--synthetic_baseline=0.3"]) == 0
    assert md2tf_flags.call_command(main, GenerateConfig, ["--out=o", "--drives=6"]) == 0
    train, generate = seen
    assert train.data.synthetic == cfg.WorldConfig(drives=6, baseline=0.3)
    assert generate.world == cfg.WorldConfig(drives=6)


@pytest.mark.parametrize("world_flag, message", [
    ("frames=2", "frames must be >= 3 (targets need both neighbours), got 2"),
    ("texture_octaves=7", "texture_octaves must lie in [1, 6], got 7"),
    ("height=4", "height must be 0 (the default size) or >= 8, got 4"),
])
def test_a_world_range_check_is_one_line_naming_the_flag_in_both_commands(capsys, world_flag, message):
    def main(config, flag_values):
        pytest.fail("the config is invalid")

    assert md2tf_flags.call_command(main, cfg.ExperimentConfig, [f"--synthetic_{world_flag}"]) == 2
    assert capsys.readouterr().err == f"error: --synthetic_{message}\n"
    assert md2tf_flags.call_command(main, GenerateConfig, ["--out=o", f"--{world_flag}"]) == 2
    assert capsys.readouterr().err == f"error: --{message}\n"


def test_data_config_with_a_world_and_video_settings_round_trips_through_json():
    data = cfg.DataConfig(dataset="synthetic", image_ext=".png",
                          synthetic=cfg.WorldConfig(drives=2, frames=9, height=40, width=96, ext="png",
                                                    seed=7, lidar=False, texture_octaves=3),
                          video=cfg.VideoConfig(target_fps=10.0, cache_dir="/frames"))
    recorded = json.loads(json.dumps(data.to_dict()))
    assert recorded["synthetic"]["drives"] == 2 and recorded["video"]["target_fps"] == 10.0
    assert cfg.DataConfig.from_dict(recorded) == data
    run = cfg.ExperimentConfig(data=data)
    assert cfg.ExperimentConfig.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_config_json_with_the_flat_world_keys_is_refused_by_name():
    """Run directories written before the world was nested are not migrated."""
    d = cfg.ExperimentConfig().to_dict()
    d["data"]["synthetic_drives"] = 4
    with pytest.raises(ValueError, match=r"unknown DataConfig keys in config: \['synthetic_drives'\]"):
        cfg.ExperimentConfig.from_dict(d)


def test_decoder_channels_flag_parses_a_comma_list():
    assert parse("--decoder_channels=8,16,32,64,128").model.decoder_channels == (8, 16, 32, 64, 128)
    assert parse().model.decoder_channels == (16, 32, 64, 128, 256)


def test_every_ablation_row_of_train_synthetic_parses_with_both_of_its_configs():
    # scripts/train_synthetic.py --ablation trains each Table 2 row with the MS config and, with
    # --mode=mono, the M recipe; a row the config refuses (a warm-up without the mask) would crash
    # hours into the run.
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_synthetic", os.path.join(REPO, "scripts", "train_synthetic.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for flagfile, mode in ((script.STEREO_FLAGS, script.ABLATION_MODE),
                           (script.MONO_FLAGS, ("--init_checkpoint=runs/pretrain",))):
        for name, switches in script.ABLATION.items():
            c = parse(f"--flagfile={flagfile}", *mode, *switches)
            automask = "--automask" in switches
            assert (c.loss.automask, c.loss.automask_warmup_steps) == (automask, 0), (flagfile, name)
