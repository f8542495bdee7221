"""Classical priors the Double-DIP tasks start from or pull towards (numpy / scipy / scikit-image).

- :mod:`.haze`: dark channel, airlight, guided filter, transmission envelope (dehazing);
- :mod:`.segmentation`: edge seeds, colour/texture features, random walk, colour model.
"""
