"""Health flags that mean what they say: judged on windows with patience, gated on D's
confidence, advice that fits the loss, periods recorded, collapse seen on image runs too."""

import math
from types import SimpleNamespace

import pytest
import torch

from ganlab.callbacks.health import Health
from ganlab.losses import MinimaxLoss, NonSaturatingLoss
from ganlab.metrics.coverage import mode_spread
from ganlab.metrics.scorer import feature_spread


class Run:
    """A stand-in trainer and module feeding ``Health`` one step's diagnostics at a time."""

    def __init__(self, loss=None, steps=10_000):
        self.trainer = SimpleNamespace(
            callback_metrics={}, num_training_batches=steps, is_global_zero=True, loggers=[],
            progress_bar_metrics={},
        )  # fmt: skip
        self.module = SimpleNamespace(
            status="running", g_step=0, last={}, check_finite=lambda: True,
            family=SimpleNamespace(loss=loss or NonSaturatingLoss()),
        )  # fmt: skip
        self.health = Health()
        self.health.setup(self.trainer, self.module, "fit")

    def steps(self, n, g_norm, d_acc=None, margin=None):
        for _ in range(n):
            self.module.g_step += 1
            self.module.last = {"grad_norm/g": torch.tensor(g_norm)}
            if d_acc is not None:
                self.module.last["d_acc"] = torch.tensor(d_acc)
            if margin is not None:  # D's mean output on real minus on fake data
                value = margin(self.module.g_step) if callable(margin) else margin
                self.module.last["d_real"] = torch.tensor(value / 2)
                self.module.last["d_fake"] = torch.tensor(-value / 2)
            self.health.on_train_batch_end(self.trainer, self.module)
        return self

    def evaluation(self, **values):
        metrics = {f"val/{k}": torch.tensor(v) for k, v in values.items()}
        self.trainer.callback_metrics.update(metrics)
        return self.steps(1, 1.0, 0.5)


def test_a_small_gradient_at_equilibrium_is_not_vanishing():
    """ring8_best: G's gradient far below its early peak while D is at chance (lr decay)."""
    run = Run().steps(300, 1.0, 0.6).steps(3000, 0.004, 0.5)
    assert run.health.summary(run.module) == {"health": {}, "health_history": {}}


@pytest.mark.parametrize(("loss", "advice"), [(MinimaxLoss(), "use the non-saturating loss"),
                                              (NonSaturatingLoss(), "weaken D")])  # fmt: skip
def test_a_vanished_gradient_under_a_confident_d_is_flagged_with_advice_for_its_loss(
    loss, advice, caplog
):
    run = Run(loss).steps(100, 1.0, 0.7).steps(600, 1e-4, 1.0)
    # patience 2: the windows ending at steps 150 and 200 both agree; D's accuracy is
    # averaged over 10 windows (0.99 from the one ending at 600), then patience again
    assert run.health.summary(run.module)["health"] == {"vanishing_g_grad": 200, "d_wins": 650}
    line = next(r.message for r in caplog.records if "vanished" in r.message)
    assert advice in line and ("non-saturating" in line) == loss.saturating


def test_a_value_at_a_threshold_does_not_flap():
    run = Run()
    for _ in range(20):  # D accuracy alternating around 0.99, window by window
        run.steps(50, 1.0, 1.0).steps(50, 1.0, 0.97)
    for _ in range(20):  # G's gradient alternating around 1 % of its peak, D confident
        run.steps(50, 0.005, 0.95).steps(50, 0.02, 0.95)
    assert run.health.summary(run.module)["health_history"] == {}


def test_the_summary_says_what_holds_at_the_end_and_when_each_flag_was_on():
    run = Run().steps(550, 1.0, 1.0).steps(200, 1.0, 0.6).steps(550, 1.0, 1.0)
    summary = run.health.summary(run.module)
    assert summary["health"] == {"d_wins": 1300}
    # 10-window means >= 0.99 at 500 and 550 (on), below at 600 and 650 (off), then again
    # from the window ending at 1250 (on at 1300)
    assert summary["health_history"] == {"d_wins": [[550, 650], [1300, None]]}
    restored = Health()
    restored.load_state_dict(run.health.state_dict())
    assert restored.summary(None) == summary


def test_collapse_from_the_spread_of_image_features_and_lost_modes():
    run = Run(steps=1000).steps(200, 1.0, 0.6)
    run.evaluation(spread=0.9, modes=10.0).steps(99, 1.0, 0.6)
    run.evaluation(spread=0.8, modes=9.0).steps(99, 1.0, 0.6)  # one mode lost: noise
    assert run.health.summary(run.module)["health"] == {}
    run.evaluation(spread=0.3, modes=9.0)  # image features spread a third as widely
    assert run.health.summary(run.module)["health"] == {"collapse": 401}
    run.steps(99, 1.0, 0.6).evaluation(spread=0.9, modes=6.0)  # 4 of 10 modes lost
    assert "collapse" in run.health.summary(run.module)["health"]


def test_feature_spread_is_one_for_real_data_and_small_for_a_collapsed_g():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 8, generator=g) * torch.arange(1, 9)
    sigma = torch.cov(real.T.double())
    other = torch.randn(4000, 8, generator=g) * torch.arange(1, 9)
    assert feature_spread(other, sigma) == pytest.approx(1.0, abs=0.03)
    collapsed = other[:10].repeat(400, 1) * 0.1
    assert feature_spread(collapsed, sigma) < 0.15


def test_mode_spread_is_one_for_real_samples_and_half_for_samples_half_as_wide():
    from ganlab.data.toy import ring

    ring8, g = ring(), torch.Generator().manual_seed(0)
    real = ring8.sample(100_000, g)
    assert mode_spread(real, ring8.means, ring8.std) == pytest.approx(1, abs=0.01)
    centres = ring8.means[torch.randint(8, (20_000,), generator=g)]
    narrow = centres + 0.5 * 0.974 * ring8.std * torch.randn(20_000, 2, generator=g)
    assert mode_spread(narrow, ring8.means, ring8.std) == pytest.approx(0.5, abs=0.01)


def test_a_margin_that_swings_in_sign_is_oscillation_and_a_settled_one_is_not():
    """The Dirac-GAN's signature: D's margin swings from D ahead to G ahead and back, by
    more than a logit; at an equilibrium it hovers near 0, changing sign by little."""

    def swinging(step):  # a period of 4 windows (200 steps), amplitude 2 logits
        return 2.0 * math.sin(2 * math.pi * step / 200)

    run = Run().steps(1000, 1.0, 0.7, margin=swinging)
    # 8 windows of margin history from step 400, then patience 2: on at step 450
    assert run.health.summary(run.module)["health"] == {"oscillation": 450}
    run.steps(1000, 1.0, 0.7, margin=0.8)  # settled: D a little ahead, steadily
    assert run.health.summary(run.module)["health_history"]["oscillation"][0][1] is not None

    def hovering(step):  # equilibrium noise: sign flips, tiny swings
        return 0.05 * (-1) ** (step // 50)

    assert Run().steps(3000, 1.0, 0.5, margin=hovering).health.summary(None)["health"] == {}

    def learning(step):  # a margin that drifts as D learns: large range, no swings
        return -1.0 + step / 500

    assert Run().steps(3000, 1.0, 0.6, margin=learning).health.summary(None)["health"] == {}


def test_the_oscillation_state_survives_resume():
    run = Run().steps(420, 1.0, 0.7, margin=lambda s: 2.0 * math.sin(2 * math.pi * s / 200))
    resumed = Health()
    resumed.load_state_dict(run.health.state_dict())
    assert resumed._margin_means == run.health._margin_means and len(resumed._margin_means) == 8
