"""What a job reports while it trains: one loss point per logged loss."""

from __future__ import annotations

from loraforge.jobs.progress import JobProgress


def test_steps_between_logged_losses_add_no_points_to_the_loss_curve():
    progress = JobProgress()
    progress.started(experiment_id="x", total_steps=30, epochs=1)
    for step in range(1, 31):
        progress.step(step=step, epoch=step / 30, loss=None)
        if step % 10 == 0:
            progress.step(step=step, epoch=step / 30, loss=1.0 / step)
    snapshot = progress.snapshot()
    assert snapshot["loss_history"] == [[10, 0.1], [20, 0.05], [30, 0.03333]]
    assert snapshot["step"] == 30 and snapshot["loss"] == 1.0 / 30
