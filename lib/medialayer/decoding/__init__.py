"""Bytes -> decoded media, with the guards that hostile files need."""
from .sniff import infer_media_type, sniff_media_type
from .image import DecodedImage, decode_image

__all__ = ["DecodedImage", "decode_image", "infer_media_type", "sniff_media_type"]
