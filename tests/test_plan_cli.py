import json

from conftest import FIXTURES
from jepa_ac import plan


def test_plan_cli_on_recorded_trajectory(tmp_path):
    report = plan.main(["--checkpoint", str(FIXTURES / "vjepa2_ac_tiny.pt"), "--arch",
                        str(FIXTURES / "vjepa2_ac_tiny.json"), "--traj", str(FIXTURES / "franka_example_traj.npz"),
                        "--samples", "32", "--iterations", "2", "--topk", "4", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["action"] == report["action"] and len(saved["action"]) == 7
    assert len(saved["recorded_action"]) == 7
    assert max(abs(v) for v in saved["action"][:3]) <= 0.05
