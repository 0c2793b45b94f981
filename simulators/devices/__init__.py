"""Virtual devices: encoders of the exact bytes real devices send, and the devices built on them."""
