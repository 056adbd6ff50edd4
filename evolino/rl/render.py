"""An animated GIF of a policy's episode on a gymnasium environment (``evolino gym --gif``).

Frames come from gymnasium's ``render_mode="rgb_array"`` (classic-control needs pygame:
``pip install evolino[render]``); Pillow, a matplotlib dependency already, writes the GIF into
memory, and :func:`evolino._io.write_bytes` puts it in place atomically.
"""

from __future__ import annotations

import io

import numpy as np

from .._io import write_bytes
from .._validate import EvolinoError, check_positive_int

__all__ = ["check_render", "episode_frames", "save_gif"]

FIX = 'pip install "evolino[render]"'


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise EvolinoError(f"writing a GIF needs Pillow ({exc}); {FIX}") from None
    return Image


def check_render(env_id, **env_kwargs) -> None:
    """Raise :class:`~evolino.EvolinoError` with the fix unless ``env_id`` renders RGB frames and Pillow
    is installed: called before a search, so a missing dependency costs no training."""
    from .gym import make_env

    _pillow()
    try:
        env = make_env(env_id, render_mode="rgb_array", **env_kwargs)
    except TypeError as exc:  # a factory without a render_mode argument
        raise EvolinoError(f"--gif: the environment factory does not take render_mode ({exc})") from None
    try:
        env.reset(seed=0)
        frame = env.render()
    except ImportError as exc:  # gymnasium's DependencyNotInstalled is an ImportError
        raise EvolinoError(f"--gif: the environment cannot render ({exc}); {FIX}") from None
    finally:
        env.close()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise EvolinoError("--gif: the environment's render() did not return an RGB array")


def episode_frames(env_id, policy, *, seed=None, max_steps=None) -> tuple:
    """RGB frames ``(T + 1, height, width, 3)`` uint8 of one episode of ``policy``, its return, and the
    environment's ``render_fps`` (30 if it names none).

    The same episode as :func:`evolino.rl.gym.rollout` with the same ``seed`` (rendering does
    not change the dynamics); ``env_id`` is an id or a factory taking ``render_mode``.
    """
    from gymnasium.wrappers import RenderCollection  # a frame after the reset and after every step

    from .gym import make_env, rollout

    env = RenderCollection(make_env(env_id, render_mode="rgb_array", **policy.info.get("env_kwargs", {})))
    fps = float(env.metadata.get("render_fps") or 30.0)
    try:
        out = rollout(env, policy, seed=seed, max_steps=max_steps)
        frames = np.stack(env.render()).astype(np.uint8, copy=False)
    finally:
        env.close()
    return frames, out["return"], fps


def save_gif(frames, path, *, fps: float = 30.0, max_frames: int = 400) -> int:
    """Write ``frames`` ``(N, height, width, 3)`` uint8 as a looping GIF at ``path`` (atomically).

    Episodes longer than ``max_frames`` keep every k-th frame (k the smallest that fits),
    played at ``fps / k`` so the clip keeps the episode's real duration. Returns the frames
    written.
    """
    Image = _pillow()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise EvolinoError(f"frames must have shape (N, height, width, 3) with N >= 1, got {frames.shape}")
    k = -(-len(frames) // check_positive_int(max_frames, "max_frames"))
    kept = frames[::k].astype(np.uint8)
    images = [Image.fromarray(f) for f in kept]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=int(round(1000.0 * k / fps)))
    write_bytes(path, buf.getvalue())
    return len(kept)
