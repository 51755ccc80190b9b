# The part of Channels' API distviz uses, typed (Channels ships no type information).
