from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("eventplatform", "0003_consumer_offset_topic_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="read_only",
            field=models.BooleanField(default=False),
        ),
    ]
