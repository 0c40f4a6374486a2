"""Fingerspelling: per-frame letter probabilities from a video stream -> letters and words.

decode.py, the decoder, is NumPy only (no torch, no mediapipe); handsign/web/spell.js is the same decoder for
the browser. frames.py (video files and folders of frames), stream.py (frames -> letter evidence) and video.py
(`spell`, the API of `handsign spell`) read videos; they import OpenCV and MediaPipe only when used."""
from handsign.spell.decode import DecoderSettings, Letter, StreamDecoder, decode
from handsign.spell.video import spell

__all__ = ["DecoderSettings", "Letter", "StreamDecoder", "decode", "spell"]
