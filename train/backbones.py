"""The backbones a classifier can stand on: how to build each one and whether it scales pixels itself.

Every constructor is a ``tf_keras.applications`` function called with ``input_tensor`` so that its layers join
the classifier's own graph (flat, see train.model). ``normalises`` tells whether the backbone already maps
0..255 pixels to what it expects (MobileNetV3 and EfficientNet do, MobileNetV2 wants -1..1).
"""

from __future__ import annotations

from dataclasses import dataclass

from nsl.errors import ConfigError
from nsl.options import BACKBONE_ALPHAS

IMAGENET_SIZES = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class Backbone:
    """One entry of the registry."""

    name: str
    constructor: str          # attribute of tf_keras.applications
    normalises: bool          # True: takes 0..255 pixels; False: wants -1..1 (the model adds a Rescaling layer)
    weights_file: str = ""    # the Keras file name of the ImageNet weights (no top), for the offline hint

    @property
    def alphas(self) -> tuple:
        """Width multipliers with ImageNet weights (nsl.options checks alpha against them)."""
        return BACKBONE_ALPHAS[self.name]

    def build(self, input_tensor, alpha: float, weights: str | None):
        """Call the constructor; ``weights`` is 'imagenet' or None (a PATH is loaded later by train.model)."""
        from tf_keras import applications

        kwargs = {"input_tensor": input_tensor, "include_top": False, "weights": weights}
        if self.name.startswith("mobilenet"):
            kwargs["alpha"] = alpha
        return getattr(applications, self.constructor)(**kwargs)


REGISTRY = {
    "mobilenet_v2": Backbone("mobilenet_v2", "MobileNetV2", False, "mobilenet_v2_1.0_224_no_top.h5"),
    "mobilenet_v3_small": Backbone("mobilenet_v3_small", "MobileNetV3Small", True,
                                   "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"),
    "mobilenet_v3_large": Backbone("mobilenet_v3_large", "MobileNetV3Large", True,
                                   "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"),
    "efficientnet_b0": Backbone("efficientnet_b0", "EfficientNetB0", True, "efficientnetb0_notop.h5"),
}


def get_backbone(name: str) -> Backbone:
    """The registry entry for ``name``; a one-line error lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"config key 'backbone': unknown backbone {name!r} "
                          f"(choose one of {', '.join(REGISTRY)})") from None
