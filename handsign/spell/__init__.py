"""Fingerspelling: per-frame letter probabilities from a video stream -> letters and words.

decode.py, the decoder, and motion.py, the motion reader (J and Z), are NumPy only (no torch, no mediapipe);
handsign/web/spell.js and handsign/web/motion.js are the same for the browser. Only motion_fit, which trains the
motion model, needs torch. frames.py (video files and folders of frames), stream.py (frames -> letter evidence) and
video.py (`spell`, the API of `handsign spell`) read videos; they import OpenCV and MediaPipe only when used."""
from handsign.spell.decode import DecoderSettings, Letter, StreamDecoder, decode
from handsign.spell.motion import MOTION_LETTERS, MotionReader, MotionSettings
from handsign.spell.video import spell

__all__ = ["DecoderSettings", "Letter", "StreamDecoder", "decode", "MOTION_LETTERS", "MotionReader", "MotionSettings",
           "spell"]
