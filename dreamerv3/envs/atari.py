"""Atari through ale-py's ALEInterface, with the Atari100k protocol.

One agent step = `repeat` emulator frames with the same action; the
observation is the pixel-wise max of the last two frames (removes sprite
flicker), resized to 64x64 RGB. No sticky actions, minimal action set, up to
`noops` random no-op steps after each reset, lives ignored (the episode ends
only at game over). The reward is the unclipped game score, so the episode
score is their sum. Episodes are cut at 108,000 emulator frames (27,000 agent
steps), the usual Atari cap; that cut is is_last without is_terminal.
"""

import elements
import numpy as np
from PIL import Image

from dreamerv3 import envs

GAMES = (
    "alien",
    "amidar",
    "assault",
    "asterix",
    "bank_heist",
    "battle_zone",
    "boxing",
    "breakout",
    "chopper_command",
    "crazy_climber",
    "demon_attack",
    "freeway",
    "frostbite",
    "gopher",
    "hero",
    "jamesbond",
    "kangaroo",
    "krull",
    "kung_fu_master",
    "ms_pacman",
    "pong",
    "private_eye",
    "qbert",
    "road_runner",
    "seaquest",
    "up_n_down",
)
MAX_FRAMES = 108000


class Atari:
    def __init__(
        self,
        game,
        size=(64, 64),
        repeat=4,
        sticky=False,
        gray=False,
        actions="needed",
        lives="unused",
        noops=30,
        pooling=True,
        resize="pillow",
        seed=0,
    ):
        if game not in GAMES:
            raise ValueError(f"unknown Atari100k game '{game}' (known: {', '.join(GAMES)})")
        if lives != "unused":
            raise ValueError(f"env.atari100k.lives must be 'unused', got '{lives}'")
        if resize != "pillow":
            raise ValueError(f"env.atari100k.resize must be 'pillow', got '{resize}'")
        if actions not in ("needed", "all"):
            raise ValueError(f"env.atari100k.actions must be 'needed' or 'all', got '{actions}'")
        import ale_py

        self.game = game
        self.size = tuple(size)
        self.repeat = int(repeat)
        self.gray = gray
        self.noops = int(noops)
        self.pooling = pooling
        self.rng = np.random.default_rng(seed)
        self.ale = ale_py.ALEInterface()
        self.ale.setLoggerMode(ale_py.LoggerMode.Error)
        self.ale.setInt("random_seed", int(seed) % (2**31))
        self.ale.setFloat("repeat_action_probability", 0.25 if sticky else 0.0)
        self.ale.setInt("frame_skip", 1)
        self.ale.setInt("max_num_frames_per_episode", MAX_FRAMES)
        self.ale.loadROM(ale_py.roms.get_rom_path(game))
        if actions == "needed":
            self.actions = list(self.ale.getMinimalActionSet())
        else:
            self.actions = list(self.ale.getLegalActionSet())
        height, width = self.ale.getScreenDims()
        self.frames = [np.zeros((height, width, 3), np.uint8) for _ in range(2)]
        self.done = True

    @property
    def obs_space(self):
        channels = 1 if self.gray else 3
        return {
            "image": elements.Space(np.uint8, self.size + (channels,)),
            **envs.step_spaces(),
        }

    @property
    def act_space(self):
        return {
            "action": elements.Space(np.int32, (), 0, len(self.actions)),
            "reset": elements.Space(bool),
        }

    def step(self, action):
        if action["reset"] or self.done:
            self._reset()
            self.done = False
            return self._obs(0.0, is_first=True)
        reward = 0.0
        chosen = self.actions[int(action["action"])]
        for repeat in range(self.repeat):
            reward += self.ale.act(chosen)
            # Keep the last two frames of this step for the max-pool.
            if repeat >= self.repeat - 2:
                self.ale.getScreenRGB(self.frames[repeat - self.repeat + 2])
            if self.ale.game_over():
                self.ale.getScreenRGB(self.frames[1])
                if repeat < self.repeat - 2:
                    self.frames[0][:] = self.frames[1]
                break
        over = self.ale.game_over()
        self.done = over or self.ale.game_truncated()
        return self._obs(reward, is_last=self.done, is_terminal=over)

    def close(self):
        self.ale = None

    def _reset(self):
        self.ale.reset_game()
        for _ in range(int(self.rng.integers(0, self.noops + 1))):
            self.ale.act(_noop())
            if self.ale.game_over():
                self.ale.reset_game()
        # The pool partner of the first frame is the same frame.
        self.ale.getScreenRGB(self.frames[0])
        self.frames[1][:] = self.frames[0]

    def _obs(self, reward, is_first=False, is_last=False, is_terminal=False):
        if self.pooling:
            frame = np.maximum(self.frames[0], self.frames[1])
        else:
            frame = self.frames[1]
        image = Image.fromarray(frame)
        if image.size != (self.size[1], self.size[0]):
            image = image.resize((self.size[1], self.size[0]), Image.BILINEAR)
        if self.gray:
            image = np.asarray(image.convert("L"))[..., None]
        else:
            image = np.asarray(image)
        return {
            "image": np.ascontiguousarray(image),
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_terminal,
        }


def _noop():
    import ale_py

    return ale_py.Action.NOOP
