"""The rows of a batch: each a pending token stream of whole or partly cut sentences.

A `_Row` holds `_Segment`s, one per sentence, each with its forward stream
(`<S> ... </S>`) and backward stream (`</S> ... <S>`); `WindowBatcher` cuts a
window off the front of every row per batch and names a row's sentences by
their corpus position in its state.
"""

from elmo_keras.training.vocab import BOS_TOKEN, EOS_TOKEN


class _Segment:
    """A sentence in a row: its ref, its forward and backward token streams, and how much of them is cut."""

    __slots__ = ("ref", "forward", "backward", "offset")

    def __init__(self, ref, forward, backward, offset=0):
        self.ref, self.forward, self.backward, self.offset = ref, forward, backward, offset

    @classmethod
    def of_sentence(cls, ref, tokens, offset=0):
        return cls(ref, [BOS_TOKEN] + tokens + [EOS_TOKEN], [EOS_TOKEN] + tokens[::-1] + [BOS_TOKEN], offset)

    def __len__(self):
        return len(self.forward) - self.offset

    def state(self):
        return [*self.ref, self.offset]


class _Row:
    """The pending token stream of one batch row: whole or partly cut sentences, in order.

    Cutting a window costs its own length, whatever the sentences' lengths
    (a 1 MB line is cut window by window, never copied), and the row's state
    names its sentences by position, so it stays small.
    """

    __slots__ = ("segments", "length")

    def __init__(self, segments=()):
        self.segments = list(segments)
        self.length = sum(len(s) for s in self.segments)

    def append(self, segment):
        self.segments.append(segment)
        self.length += len(segment)

    def window(self, size):
        """The first `size` pending tokens (fewer if the row is shorter), forward and backward."""
        forward, backward = [], []
        for segment in self.segments:
            take = min(len(segment), size - len(forward))
            forward.extend(segment.forward[segment.offset : segment.offset + take])
            backward.extend(segment.backward[segment.offset : segment.offset + take])
            if len(forward) == size:
                break
        return forward, backward

    def cut(self, size):
        """Drop the first `size` pending tokens (all of them if the row is shorter)."""
        size = min(size, self.length)
        self.length -= size
        while size:
            segment = self.segments[0]
            step = min(size, len(segment))
            segment.offset += step
            size -= step
            if not len(segment):
                self.segments.pop(0)
