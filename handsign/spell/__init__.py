"""Fingerspelling: per-frame letter probabilities from a video stream -> letters and words.
NumPy only (no torch, no mediapipe); handsign/web/spell.js is the same decoder for the browser, and
handsign/web/motion.js the same motion reader (J and Z). Only motion_fit, which trains the motion model,
needs torch."""
from handsign.spell.decode import DecoderSettings, Letter, StreamDecoder, decode
from handsign.spell.motion import MOTION_LETTERS, MotionReader, MotionSettings

__all__ = ["DecoderSettings", "Letter", "StreamDecoder", "decode", "MOTION_LETTERS", "MotionReader", "MotionSettings"]
