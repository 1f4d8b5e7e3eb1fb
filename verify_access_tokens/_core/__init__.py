"""Rules, errors, types, defaults and (de)serialisation shared by every layer."""
