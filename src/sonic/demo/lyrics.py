"""Lyrics for the demo tracks, in a few languages, from small hand-written word lists."""

from __future__ import annotations

import numpy as np

WORDS: dict[str, tuple[str, ...]] = {
    "en": ("night", "light", "heart", "road", "fire", "rain", "dream", "city", "river", "home", "dance", "alone",
           "tonight", "forever", "burning", "falling", "shadow", "morning", "ocean", "summer", "you", "me", "we",
           "never", "always", "love", "run", "stay", "hold", "sky"),
    "es": ("noche", "luz", "corazón", "camino", "fuego", "lluvia", "sueño", "ciudad", "río", "casa", "bailar",
           "solo", "siempre", "nunca", "amor", "mar", "verano", "sombra", "mañana", "tú", "yo", "nosotros",
           "quiero", "vida", "cielo", "luna", "sol", "beso", "calle", "tiempo"),
    "pt": ("noite", "luz", "coração", "estrada", "fogo", "chuva", "sonho", "cidade", "rio", "casa", "dançar",
           "sozinho", "sempre", "nunca", "amor", "mar", "verão", "sombra", "saudade", "você", "eu", "nós", "quero",
           "vida", "céu", "lua", "sol", "beijo", "rua", "tempo"),
    "de": ("Nacht", "Licht", "Herz", "Straße", "Feuer", "Regen", "Traum", "Stadt", "Fluss", "Haus", "tanzen",
           "allein", "immer", "niemals", "Liebe", "Meer", "Sommer", "Schatten", "Morgen", "du", "ich", "wir",
           "will", "Leben", "Himmel", "Mond", "Sonne", "Kuss", "Zeit", "Wind"),
    "fr": ("nuit", "lumière", "cœur", "route", "feu", "pluie", "rêve", "ville", "rivière", "maison", "danser",
           "seul", "toujours", "jamais", "amour", "mer", "été", "ombre", "matin", "toi", "moi", "nous", "veux",
           "vie", "ciel", "lune", "soleil", "baiser", "rue", "temps"),
    "it": ("notte", "luce", "cuore", "strada", "fuoco", "pioggia", "sogno", "città", "fiume", "casa", "ballare",
           "solo", "sempre", "mai", "amore", "mare", "estate", "ombra", "mattina", "tu", "io", "noi", "voglio",
           "vita", "cielo", "luna", "sole", "bacio", "via", "tempo"),
}


def make_lyrics(language: str, rng: np.random.Generator, *, n_lines: int = 12, words_per_line: int = 6) -> str:
    """``n_lines`` lines of ``language`` words, with a repeated chorus line, newline-separated."""
    vocabulary = WORDS[language]
    lines = [" ".join(rng.choice(vocabulary, size=words_per_line)) for _ in range(n_lines)]
    chorus = lines[1]
    for position in range(3, n_lines, 4):
        lines[position] = chorus
    return "\n".join(line[:1].upper() + line[1:] for line in lines) + "\n"
