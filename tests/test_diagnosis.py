from handsign.train.diagnosis import diagnose


def hist(pairs):
    return [{"epoch": i + 1, "train_acc": t, "valid_acc": v, "train_loss": 1 - t, "valid_loss": 1 - v}
            for i, (t, v) in enumerate(pairs)]


def test_overfitting_named_with_numbers():
    d = diagnose(hist([(0.8, 0.7), (0.95, 0.8), (0.999, 0.81)]))
    assert d["verdict"] == "overfitting" and "train 99.9 % vs valid 81.0 %" in d["text"]
    assert "CNN" in d["text"] and d["gap"] == 18.9


def test_overfitting_seen_only_on_test():
    d = diagnose(hist([(0.9, 0.95), (0.999, 1.0)]), test_acc=0.80)
    assert d["verdict"] == "overfitting" and "test 80.0 %" in d["text"] and "near-copies" in d["text"]


def test_good_fit_and_underfitting_and_instability():
    assert diagnose(hist([(0.9, 0.9), (0.98, 0.975)]), test_acc=0.978)["verdict"] == "good-fit"
    assert diagnose(hist([(0.3, 0.3), (0.5, 0.48)]))["verdict"] == "underfitting"
    assert diagnose(hist([(0.9, 0.9), (0.95, 0.95), (0.97, 0.97), (0.98, 0.9), (0.985, 0.97)]))["verdict"] == "unstable"
