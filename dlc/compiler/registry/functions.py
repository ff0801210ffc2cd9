"""Activations and kernel initializers: elementwise functions and the starting weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlc.compiler.registry.base import Entry


@dataclass(frozen=True)
class Activation(Entry):
    build: Callable[[Any], Callable] | None = None  # build(lib) -> elementwise function
    code: str = "{x}"  # the same function written out for `--emit py`, applied to `{x}`
    # Its outputs along the last axis sum to 1: over a last axis of one unit it is the constant 1,
    # so the layers before it get no gradient and the output says nothing (an error, E405).
    sums_to_one: bool = False


ACTIVATIONS: tuple[Activation, ...] = (
    Activation("relu", "max(0, x)", build=lambda lib: lib.nn.relu, code="nn.relu({x})"),
    Activation("sigmoid", "1 / (1 + e^-x): a probability for each unit", build=lambda lib: lib.nn.sigmoid,
               code="nn.sigmoid({x})"),
    Activation("tanh", "hyperbolic tangent, in (-1, 1)", build=lambda lib: lib.jnp.tanh, code="jnp.tanh({x})"),
    Activation("softmax", "probabilities over the last axis that sum to 1", build=lambda lib: lib.nn.softmax,
               code="nn.softmax({x})", sums_to_one=True),
    Activation("gelu", "Gaussian error linear unit (exact, as in Keras and PyTorch)",
               build=lambda lib: lambda x: lib.nn.gelu(x, approximate=False), code="nn.gelu({x}, approximate=False)"),
    Activation("elu", "exponential linear unit", build=lambda lib: lib.nn.elu, code="nn.elu({x})"),
    Activation("leaky_relu", "relu with slope 0.01 below zero", build=lambda lib: lib.nn.leaky_relu,
               code="nn.leaky_relu({x})"),
    Activation("silu", "x * sigmoid(x)", aliases=("swish",), build=lambda lib: lib.nn.silu, code="nn.silu({x})"),
    Activation("softplus", "log(1 + e^x), a smooth relu", build=lambda lib: lib.nn.softplus,
               code="nn.softplus({x})"),
    Activation("linear", "the identity: no activation", build=lambda lib: lambda x: x),
)


@dataclass(frozen=True)
class Initializer(Entry):
    build: Callable[[Any], Any] | None = None  # build(lib) -> a jax.nn.initializers function
    code: str = ""  # the same initializer written out for `--emit py`


INITIALIZERS: tuple[Initializer, ...] = (
    Initializer("glorot_uniform", "Glorot/Xavier uniform (the Keras default)",
                build=lambda lib: lib.jax.nn.initializers.glorot_uniform(),
                code="jax.nn.initializers.glorot_uniform()"),
    Initializer("glorot_normal", "Glorot/Xavier normal", build=lambda lib: lib.jax.nn.initializers.glorot_normal(),
                code="jax.nn.initializers.glorot_normal()"),
    Initializer("he_uniform", "He uniform, for relu", build=lambda lib: lib.jax.nn.initializers.he_uniform(),
                code="jax.nn.initializers.he_uniform()"),
    Initializer("he_normal", "He normal, for relu", build=lambda lib: lib.jax.nn.initializers.he_normal(),
                code="jax.nn.initializers.he_normal()"),
    Initializer("lecun_uniform", "LeCun uniform", build=lambda lib: lib.jax.nn.initializers.lecun_uniform(),
                code="jax.nn.initializers.lecun_uniform()"),
    Initializer("lecun_normal", "LeCun normal (the Flax default)",
                build=lambda lib: lib.jax.nn.initializers.lecun_normal(),
                code="jax.nn.initializers.lecun_normal()"),
    Initializer("zeros", "all zeros", build=lambda lib: lib.jax.nn.initializers.zeros,
                code="jax.nn.initializers.zeros"),
)
