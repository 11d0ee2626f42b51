from django.db import migrations, models


class Migration(migrations.Migration):
    """The Taskito permissions (an unmanaged model: no table is created)."""

    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Taskito",
            fields=[("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"))],
            options={
                "managed": False,
                "default_permissions": (),
                "permissions": [
                    ("view_taskito", "Can see the Taskito admin pages"),
                    ("change_taskito",
                     "Can operate Taskito: pause queues, cancel jobs, retry and delete dead letters"),
                ],
                "verbose_name": "Taskito",
                "verbose_name_plural": "Taskito",
            },
        ),
    ]
