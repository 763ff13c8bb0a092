"""WildRobot-class humanoid constants. The MJCF (``wildrobot.xml``) is built to match these."""

from robots.spec import JointLimit, RobotSpec

_LEG_JOINTS = ("hip_pitch", "hip_roll", "knee_pitch", "ankle_pitch")
_LEG_LIMITS = {
    "hip_pitch": JointLimit(-0.09, 1.57),
    "hip_roll": JointLimit(-0.17, 1.57),
    "knee_pitch": JointLimit(0.0, 1.40),
    "ankle_pitch": JointLimit(-0.70, 0.79),
}
_STANDING_LEG = {"hip_pitch": 0.2, "knee_pitch": 0.4, "ankle_pitch": 0.2}


def _per_side(table: dict) -> dict:
    return {f"{side}_{joint}": value
            for side in ("left", "right") for joint, value in table.items()}


SPEC = RobotSpec(
    name="wildrobot",
    scene_xml="scene.xml",
    root_body="pelvis",
    joint_names=(
        *(f"left_{j}" for j in _LEG_JOINTS),
        *(f"right_{j}" for j in _LEG_JOINTS),
        "waist_yaw",
        "left_shoulder_pitch",
        "right_shoulder_pitch",
    ),
    amp_joint_names=(
        "waist_yaw",
        *(f"left_{j}" for j in _LEG_JOINTS),
        *(f"right_{j}" for j in _LEG_JOINTS),
    ),
    contact_sites={
        "left_toe": "left_toe",
        "left_heel": "left_heel",
        "right_toe": "right_toe",
        "right_heel": "right_heel",
    },
    foot_bodies=("left_foot", "right_foot"),
    default_pose=_per_side(_STANDING_LEG),
    joint_limits={
        **_per_side(_LEG_LIMITS),
        "waist_yaw": JointLimit(-0.52, 0.52),
        "left_shoulder_pitch": JointLimit(-1.57, 1.57),
        "right_shoulder_pitch": JointLimit(-1.57, 1.57),
    },
    actuator_force_limit=4.0,
    actuator_kp=21.1,
    actuator_kv=0.5,
    mirror_pairs=(
        *((f"left_{j}", f"right_{j}") for j in _LEG_JOINTS),
        ("left_shoulder_pitch", "right_shoulder_pitch"),
    ),
    mirror_negate=("waist_yaw",),
    standing_height_m=0.4826,
)
