"""Exceptions raised by the converter.

Every error a user can cause with bad input is a ``ConvertError`` (a
``ValueError``), so callers (the CLI) can catch one class and print the message.
"""
from __future__ import annotations


class ConvertError(ValueError):
    """Base class: the input cannot be converted as asked."""


class MissingConfigError(ConvertError):
    """The checkpoint directory has no config.json."""


class UnsupportedArchitectureError(ConvertError, NotImplementedError):
    """config.json names an architecture this converter does not handle.

    Also a NotImplementedError, matching how the rest of the project reports
    things that are valid but not supported.
    """


class MissingTensorError(ConvertError):
    """A tensor the architecture needs is absent from the checkpoint."""


class UnexpectedTensorError(ConvertError):
    """The checkpoint holds a tensor the architecture has no place for."""


class ShapeMismatchError(ConvertError):
    """A tensor's shape disagrees with what config.json implies."""


class UnknownOutTypeError(ConvertError):
    """The requested output type is not one the converter can write."""


class CheckpointFormatError(ConvertError):
    """A source file (safetensors, JSON, GGUF) is malformed or truncated."""


class ConfigError(ConvertError):
    """config.json lacks a value the architecture needs, or holds an invalid one."""


class UnsupportedTypeError(ConvertError, NotImplementedError):
    """A source tensor's type cannot be decoded by the converter."""


class SourceNotFoundError(ConvertError, FileNotFoundError):
    """The source path does not exist."""
