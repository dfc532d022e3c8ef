"""sam-peft-bench: parameter-efficient fine-tuning of Segment Anything, reproduced and compared."""

__version__ = "0.1.0"
