"""Each provider's section of the spec (``spec.provider.<type>``): validated with the spec, below the
providers that read it, so that the spec layer imports nothing above itself."""
