"""Fingerspelling: per-frame letter probabilities from a video stream -> letters and words.
NumPy only (no torch, no mediapipe); handsign/web/spell.js is the same decoder for the browser."""
from handsign.spell.decode import DecoderSettings, Letter, StreamDecoder, decode

__all__ = ["DecoderSettings", "Letter", "StreamDecoder", "decode"]
