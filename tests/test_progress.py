"""The shared progress bar: counts, callback form, messages on their own line, disabled = silent."""

from __future__ import annotations

from md2tf.progress import Progress


def test_update_and_callback_forms_count_items(capsys):
    with Progress(10, "demo", unit="image") as bar:
        bar.update(3, postfix="loss 0.5")
        bar(6)  # item index 6 done = 7 items
        assert bar._bar.n == 7
        bar.write("epoch 1: val loss 0.1")
    err = capsys.readouterr().err
    assert "demo" in err and "7/10" in err and "loss 0.5" in err
    assert "\repoch 1: val loss 0.1\n" in err  # the bar line is cleared first: its own line


def test_resumed_bar_starts_at_initial(capsys):
    with Progress(20, "train", unit="step", initial=5) as bar:
        bar.update(1)
        assert bar._bar.n == 6
    assert "6/20" in capsys.readouterr().err


def test_disabled_bar_prints_nothing(capsys):
    with Progress(4, "quiet", enabled=False) as bar:
        bar.update(4)
    assert capsys.readouterr().err == ""


def test_own_eta_replaces_tqdms(capsys):
    with Progress(100, "train", unit="step", own_eta=True) as bar:
        bar.update(10, postfix="loss 0.5", eta_s=125.0)
    err = capsys.readouterr().err
    assert "loss 0.5, ETA 02:05" in err and "10/100" in err
    assert "<" not in err  # tqdm's own remaining-time field is not shown
