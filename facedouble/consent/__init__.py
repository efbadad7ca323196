"""The consent gate train calls: consent records, the person check against the signer's reference faces,
and the model's keyed consent seal. It stands above extract, whose identity model the person check uses."""
