from django.contrib import admin
from django.urls import path

from doctors import views

urlpatterns = [
    path("", views.doctor_list, name="doctor-list"),
    path("doctors/<int:pk>/", views.doctor_detail, name="doctor-detail"),
    path("admin/", admin.site.urls),
]
