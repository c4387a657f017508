"""Errors that the CLI turns into a clear message and exit code 2."""


class NmjaxError(Exception):
    """A problem with the user's input (file, layer, setting) that they can act on."""


class ModelError(NmjaxError):
    """A model file that cannot be read or that NeuronMotif cannot decode."""
