"""Lyrics written for the tests, each with translations (es, de, fr, pt, it), plus unrelated lyrics."""

SONGS = {
    "rain": {
        "en": "The rain keeps falling on the empty street\nI wait for you beside the window every night\n"
              "The clock is slow, my coffee has gone cold\nCome home before the morning light",
        "es": "La lluvia sigue cayendo en la calle vacía\nTe espero junto a la ventana cada noche\n"
              "El reloj va lento, mi café se ha enfriado\nVuelve a casa antes de la luz de la mañana",
        "de": "Der Regen fällt weiter auf die leere Straße\nIch warte jede Nacht am Fenster auf dich\n"
              "Die Uhr ist langsam, mein Kaffee ist kalt geworden\nKomm nach Hause vor dem Morgenlicht",
        "fr": "La pluie continue de tomber sur la rue vide\nJe t'attends près de la fenêtre chaque nuit\n"
              "L'horloge est lente, mon café a refroidi\nRentre à la maison avant la lumière du matin",
        "pt": "A chuva continua caindo na rua vazia\nEu espero por você junto à janela todas as noites\n"
              "O relógio está lento, meu café esfriou\nVolte para casa antes da luz da manhã",
    },
    "dance": {
        "en": "Turn the music up and dance with me tonight\nForget your troubles, the party has begun\n"
              "Move your feet to the rhythm of the drums\nWe will dance until the rising sun",
        "es": "Sube la música y baila conmigo esta noche\nOlvida tus problemas, la fiesta ha comenzado\n"
              "Mueve los pies al ritmo de los tambores\nBailaremos hasta que salga el sol",
        "de": "Dreh die Musik auf und tanz heute Nacht mit mir\nVergiss deine Sorgen, die Party hat begonnen\n"
              "Beweg deine Füße im Rhythmus der Trommeln\nWir tanzen bis die Sonne aufgeht",
        "it": "Alza la musica e balla con me stanotte\nDimentica i tuoi problemi, la festa è cominciata\n"
              "Muovi i piedi al ritmo dei tamburi\nBalleremo fino al sorgere del sole",
    },
    "sea": {
        "en": "My father was a sailor on the stormy sea\nHe sent me letters from the ports he knew\n"
              "The waves were high, the ship was made of wood\nOne day the ocean took him home",
        "es": "Mi padre era marinero en el mar tormentoso\nMe enviaba cartas desde los puertos que conocía\n"
              "Las olas eran altas, el barco era de madera\nUn día el océano se lo llevó a casa",
        "fr": "Mon père était marin sur la mer déchaînée\nIl m'envoyait des lettres des ports qu'il connaissait\n"
              "Les vagues étaient hautes, le navire était en bois\nUn jour l'océan l'a ramené chez lui",
        "pt": "Meu pai era marinheiro no mar tempestuoso\nEle me mandava cartas dos portos que conhecia\n"
              "As ondas eram altas, o navio era de madeira\nUm dia o oceano o levou para casa",
    },
    "money": {
        "en": "I work all day for money that I never see\nThe rent is due, the bills are on the floor\n"
              "My boss is rich and drives a shiny car\nOne day I will not work here anymore",
        "de": "Ich arbeite den ganzen Tag für Geld, das ich nie sehe\n"
              "Die Miete ist fällig, die Rechnungen liegen am Boden\n"
              "Mein Chef ist reich und fährt ein glänzendes Auto\nEines Tages werde ich hier nicht mehr arbeiten",
        "it": "Lavoro tutto il giorno per soldi che non vedo mai\n"
              "L'affitto è in scadenza, le bollette sono sul pavimento\n"
              "Il mio capo è ricco e guida un'auto lucida\nUn giorno non lavorerò più qui",
        "es": "Trabajo todo el día por dinero que nunca veo\nEl alquiler vence, las facturas están en el suelo\n"
              "Mi jefe es rico y maneja un coche brillante\nUn día ya no trabajaré aquí",
    },
}

UNRELATED = [
    "Little green frog jumps into the pond\nThe children laugh and chase the butterflies\nGrandma bakes an apple pie",
    "Los soldados marchan hacia la frontera\nLas banderas rojas ondean en el viento\nLa guerra no termina nunca",
    "Der Computer ist kaputt und das Internet ist langsam\nIch schreibe Code bis spät in die Nacht\nFehler überall",
    "Le train part à huit heures de la gare du nord\nMa valise est lourde de livres anciens\nJe lis un roman",
    "Eu gosto de futebol e de churrasco com os amigos\nO meu time ganhou o campeonato\nGol no último minuto",
    "Mountains of snow and a cabin made of stone\nThe old dog sleeps beside the fire\nWinter silence",
]
