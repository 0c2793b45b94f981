"""Device profiles: profile files (data), their loader and validator, and the decoders they name."""

from device_profiles._examples import check_examples, decode_example
from device_profiles._loader import EXAMPLE_RECEIVED_NS, LIBRARY_DIR, load_library, load_profile
from device_profiles.errors import DecodeError
from device_profiles.profile import DeviceProfile, ProfileError, ProfileProblem, StreamSpec
from device_profiles.registry import DecodeContext, DecodeResult, DecoderRegistry, default_registry

__all__ = [
    "EXAMPLE_RECEIVED_NS",
    "LIBRARY_DIR",
    "DecodeContext",
    "DecodeError",
    "DecodeResult",
    "DecoderRegistry",
    "DeviceProfile",
    "ProfileError",
    "ProfileProblem",
    "StreamSpec",
    "check_examples",
    "decode_example",
    "default_registry",
    "load_library",
    "load_profile",
]
