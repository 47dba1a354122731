"""CharRNN (Segler, Kogej, Tyrchan & Waller, ACS Cent. Sci. 2018), as MOSES's baseline (Polykovskiy et al. 2020).

A SMILES string is a sequence of characters c_1 .. c_T between <bos> and <eos>; an LSTM models

    p(c_1 .. c_T) = prod_t softmax(W h_t + b)[c_t],        h_t = LSTM(embed(c_{t-1}), h_{t-1}),

trained by teacher forcing (cross-entropy of every next character, padding ignored) and sampled one character
at a time from the softmax until <eos> or ``max_length`` characters. MOSES's configuration, the ``paper``
budget here: one token per character (``Cl`` is ``C`` then ``l``, as in MOSES's CharVocab), an embedding as
wide as the vocabulary, 3 LSTM layers of 768 with dropout 0.2, Adam 1e-3 halved every 10 epochs, batches of
64, 80 epochs, ``max_length`` 100. No valency check: a sample that does not parse counts against validity.
The checkpoint kept is the one of lowest validation NLL per character (evaluated after every epoch, and at the
step limit of a budget that stops inside an epoch).

Sampling is batched: every step draws the next character of all unfinished strings at once; ``sample_batch``
1 draws one string at a time (the benchmark's reference). <bos>, <pad> and <unk> are never drawn (their logits
are masked); they are never training targets either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dig.errors import DataError, TrainingError
from dig.tracks.generation.graphs import AtomVocabulary
from dig.tracks.generation.selection import BestValidationEpoch

BOS, EOS, PAD, UNK = "<bos>", "<eos>", "<pad>", "<unk>"
SPECIALS = (BOS, EOS, PAD, UNK)


class CharVocabulary:
    """Characters of the training SMILES, sorted, after the four special tokens (ids 0..3)."""

    def __init__(self, characters: Sequence[str]) -> None:
        self.tokens = (*SPECIALS, *sorted(set(characters) - set(SPECIALS)))
        self.index = {token: i for i, token in enumerate(self.tokens)}
        self.bos, self.eos, self.pad, self.unk = (self.index[t] for t in SPECIALS)

    @classmethod
    def from_smiles(cls, smiles: Sequence[str]) -> CharVocabulary:
        return cls(sorted({c for s in smiles for c in s}))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, smiles: str) -> list[int]:
        """<bos>, the characters (unknown ones as <unk>), <eos>."""
        return [self.bos, *(self.index.get(c, self.unk) for c in smiles), self.eos]

    def decode(self, ids: Sequence[int]) -> str:
        """The characters up to the first <eos> (a string that never reached <eos> is returned as drawn)."""
        out = []
        for i in ids:
            if i == self.eos:
                break
            if i >= len(SPECIALS):
                out.append(self.tokens[i])
        return "".join(out)


class CharRNNNet(nn.Module):
    def __init__(self, vocabulary_size: int, hidden: int = 768, layers: int = 3, dropout: float = 0.2,
                 pad: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, vocabulary_size, padding_idx=pad)
        self.lstm = nn.LSTM(vocabulary_size, hidden, layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
        self.head = nn.Linear(hidden, vocabulary_size)

    def forward(self, tokens: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Logits of the next character at every position of ``tokens`` [B, T], and the LSTM state after them."""
        output, state = self.lstm(self.embedding(tokens), state)
        return self.head(output), state


class CharRNN:
    """The ``char-rnn`` generator: ``fit`` by teacher forcing with validation-NLL model selection, batched
    ``sample``."""

    def __init__(self, vocabulary: AtomVocabulary | None, max_atoms: int, hidden: int = 768, layers: int = 3,
                 dropout: float = 0.2, epochs: int = 80, max_steps: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, lr_step_epochs: int = 10, lr_gamma: float = 0.5, max_length: int = 100,
                 temperature: float = 1.0, valid_molecules: int = 1000, sample_batch: int = 1000) -> None:
        if temperature <= 0:
            raise ValueError(f"char-rnn: temperature must be positive, got {temperature}")
        self.hidden, self.layers, self.dropout = hidden, layers, dropout
        self.epochs, self.max_steps, self.batch_size, self.lr = epochs, max_steps, batch_size, lr
        self.lr_step_epochs, self.lr_gamma, self.max_length = lr_step_epochs, lr_gamma, max_length
        self.temperature, self.valid_molecules, self.sample_batch = temperature, valid_molecules, sample_batch
        self.chars: CharVocabulary | None = None
        self.net: CharRNNNet | None = None

    def parameters(self):
        return self.net.parameters() if self.net is not None else iter(())

    def _encoded(self, smiles: Sequence[str], source: str) -> tuple[list[list[int]], int]:
        """Token ids of each SMILES that fits ``max_length`` characters, and how many did not (left out)."""
        assert self.chars is not None
        kept = [self.chars.encode(s) for s in smiles if len(s) <= self.max_length]
        if not kept:
            raise DataError(f"char-rnn: no {source} is at most {self.max_length} characters long; raise max_length")
        return kept, len(smiles) - len(kept)

    def _padded(self, sequences: Sequence[list[int]]) -> Tensor:
        assert self.chars is not None
        width = max(map(len, sequences))
        out = torch.full((len(sequences), width), self.chars.pad, dtype=torch.long)
        for row, ids in enumerate(sequences):
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def _nll_sum(self, tokens: Tensor) -> tuple[Tensor, int]:
        """Summed cross-entropy of every next character of ``tokens`` (padding ignored) and their count."""
        assert self.net is not None and self.chars is not None
        logits, _ = self.net(tokens[:, :-1])
        targets = tokens[:, 1:]
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=self.chars.pad,
                               reduction="sum")
        return loss, int((targets != self.chars.pad).sum())

    @torch.no_grad()
    def _valid_nll(self, sequences: list[list[int]]) -> float:
        assert self.net is not None
        self.net.eval()
        total, count = 0.0, 0
        for first in range(0, len(sequences), 256):
            loss, n = self._nll_sum(self._padded(sequences[first : first + 256]))
            total, count = total + float(loss), count + n
        return total / max(count, 1)

    def fit(self, train: list[str], valid: list[str], seed: int,
            on_epoch: Callable[[int, int, Mapping[str, float]], None] | None = None) -> dict[str, Any]:
        torch.manual_seed(seed)
        rng = np.random.RandomState(seed)
        self.chars = CharVocabulary.from_smiles(train)
        sequences, left_out = self._encoded(train, "training SMILES")
        valid_sequences, _ = self._encoded(valid[: self.valid_molecules], "validation SMILES")
        self.net = CharRNNNet(len(self.chars), self.hidden, self.layers, self.dropout, self.chars.pad)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, self.lr_step_epochs, self.lr_gamma)
        selection = BestValidationEpoch("char-rnn", self.net, self.epochs, "char", on_epoch)
        start, steps = time.perf_counter(), 0
        step_limit = math.inf if self.max_steps is None else self.max_steps
        for epoch in range(1, self.epochs + 1):
            self.net.train()
            order = rng.permutation(len(sequences))
            total, count = 0.0, 0
            for first in range(0, len(order), self.batch_size):
                if steps >= step_limit:
                    break
                steps += 1
                loss_sum, n = self._nll_sum(self._padded([sequences[i] for i in order[first : first + self.batch_size]]))
                loss = loss_sum / n
                if not torch.isfinite(loss):
                    raise TrainingError(f"char-rnn: loss became {loss.item()} at epoch {epoch}, step {steps}; "
                                        f"lower lr (now {self.lr})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, count = total + float(loss_sum.detach()), count + n
            scheduler.step()
            selection.end_epoch(epoch, total / max(count, 1), self._valid_nll(valid_sequences))
            if steps >= step_limit:
                break
        return {**selection.restore(), "steps": steps, "train_s": time.perf_counter() - start,
                "vocabulary": len(self.chars), "left_out_molecules": left_out}

    def sample(self, count: int, seed: int) -> list[str]:
        """``count`` strings drawn ``sample_batch`` at a time (invalid ones included)."""
        if self.net is None:
            raise RuntimeError("char-rnn must be fitted before sampling")
        generator = torch.Generator().manual_seed(seed)
        out: list[str] = []
        for first in range(0, count, self.sample_batch):
            out += self._sample_batch(min(self.sample_batch, count - first), generator)
        return out

    @torch.no_grad()
    def _sample_batch(self, batch: int, generator: torch.Generator) -> list[str]:
        net, chars = self.net, self.chars
        assert net is not None and chars is not None
        net.eval()
        never = torch.tensor([chars.bos, chars.pad, chars.unk])
        drawn = torch.full((batch, self.max_length), chars.pad, dtype=torch.long)
        rows = torch.arange(batch)  # the strings still unfinished; finished ones leave the batch
        token = torch.full((batch, 1), chars.bos, dtype=torch.long)
        state = None
        for step in range(self.max_length):
            logits, state = net(token, state)
            logits = logits[:, -1] / self.temperature
            logits[:, never] = -math.inf
            token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            drawn[rows, step] = token[:, 0]
            going = token[:, 0] != chars.eos
            if not going.any():
                break
            rows, token = rows[going], token[going]
            state = (state[0][:, going], state[1][:, going])
        return [chars.decode(row) for row in drawn.tolist()]


def build_char_rnn(vocabulary: AtomVocabulary | None, max_atoms: int, **hparams) -> CharRNN:
    return CharRNN(vocabulary, max_atoms, **hparams)
