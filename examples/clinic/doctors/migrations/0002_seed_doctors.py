"""The clinic opens with three doctors, so the first page has something to list."""
from django.db import migrations

DOCTORS = [
    ("Dr. Ada Moreau", "General practice"),
    ("Dr. Kofi Mensah", "Cardiology"),
    ("Dr. Lena Virtanen", "Dermatology"),
]


def seed(apps, schema_editor):
    Doctor = apps.get_model("doctors", "Doctor")
    for name, specialty in DOCTORS:
        Doctor.objects.get_or_create(name=name, specialty=specialty)


def unseed(apps, schema_editor):
    Doctor = apps.get_model("doctors", "Doctor")
    Doctor.objects.filter(name__in=[n for n, _ in DOCTORS]).delete()


class Migration(migrations.Migration):
    dependencies = [("doctors", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
