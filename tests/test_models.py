import pytest
import torch

import mnistlab as ml

NAMES = ["logreg", "mlp", "lenet5", "deeper", "conv_fc", "conv2_fc2", "pt_example", "fast", "best"]


@pytest.mark.parametrize("name", NAMES)
def test_every_model_gives_logits_and_features(name):
    model = ml.create_model(name, seed=0).eval()
    x = torch.randn(3, 1, 28, 28)
    out = model(x)
    feats = model.features(x)
    assert out.shape == (3, 10)
    assert feats.ndim == 2 and feats.shape[0] == 3
    assert torch.allclose(model.head(feats), out, atol=1e-5)
    assert model.config == {"name": name, "kwargs": {}}


def test_list_models_table():
    table = ml.list_models()
    assert set(NAMES) <= set(table.index)
    assert table.loc["logreg", "parameters"] == 7850
    assert table.loc["logreg", "macs"] == 7840
    # LeNet-5 as in the paper: about 60k parameters
    assert 60000 < table.loc["lenet5", "parameters"] < 62000
    assert table.loc["pt_example", "parameters"] == 1199882
    assert (table["description"].str.len() > 10).all()


def test_count_macs_of_a_conv():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    assert ml.count_macs(conv) == 4 * 26 * 26 * 9 + 4 * 26 * 26 * 10


def test_count_parameters_counts_trainable_only():
    model = ml.create_model("logreg")
    assert ml.count_parameters(model) == 784 * 10 + 10
    model.head.bias.requires_grad_(False)
    assert ml.count_parameters(model) == 784 * 10


def test_seed_fixes_weights_without_touching_global_rng():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = ml.create_model("lenet5", seed=7)
    after = torch.rand(1)
    b = ml.create_model("lenet5", seed=7)
    c = ml.create_model("lenet5", seed=8)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_lenet5_variants_and_errors():
    relu = ml.create_model("lenet5", activation="relu", pool="max")
    assert any(isinstance(m, torch.nn.ReLU) for m in relu.modules())
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in relu.modules())
    assert relu.config["kwargs"] == {"activation": "relu", "pool": "max"}
    with pytest.raises(ValueError, match="activation"):
        ml.create_model("lenet5", activation="swishy")
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        ml.create_model("resnet")


def test_register_model_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        ml.register_model("logreg")(lambda: None)
